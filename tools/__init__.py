"""Scripts that build data the project ships; the running app never imports them."""
