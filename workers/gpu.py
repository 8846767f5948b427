"""Tasks for the `gpu` queue (model work: generation, activations, SAE training)."""
