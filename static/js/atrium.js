// Small helpers shared by all pages. No build step.
document.addEventListener("htmx:wsClose", (event) => {
  const box = event.target.querySelector("[data-ws-state]") || event.target;
  box.setAttribute("data-ws-state", "closed");
});
document.addEventListener("htmx:wsOpen", (event) => {
  const box = event.target.querySelector("[data-ws-state]") || event.target;
  box.setAttribute("data-ws-state", "open");
});
