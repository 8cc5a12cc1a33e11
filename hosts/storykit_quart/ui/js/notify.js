// Short confirmations (polite live region) and errors (alert region).

import { h } from "./dom.js";

const SHOW_FOR = 5000;

function show(regionId, kind, title, detail) {
  const region = document.getElementById(regionId);
  if (!region) return;
  const close = h("button", { type: "button", class: "icon-button toast-close", "aria-label": "Dismiss" }, "×");
  const toast = h("div", { class: `toast toast-${kind}` },
    h("div", { class: "toast-text" }, h("strong", {}, title), detail ? h("span", {}, detail) : null),
    close);
  close.addEventListener("click", () => toast.remove());
  region.append(toast);
  while (region.children.length > 4) region.firstElementChild.remove();
  setTimeout(() => toast.remove(), kind === "error" ? SHOW_FOR * 2 : SHOW_FOR);
}

export function notify(title, detail = "") {
  show("toasts", "info", title, detail);
}

export function notifyError(error, context = "") {
  const title = context || error.title || "Something went wrong";
  show("alerts", "error", title, error.detail || error.message || "");
}

/** Show an error inside a form or panel (an element with role=alert), or clear it. */
export function inlineError(el, error) {
  if (!el) return;
  if (!error) {
    el.hidden = true;
    el.textContent = "";
    return;
  }
  el.hidden = false;
  el.textContent = typeof error === "string" ? error : error.detail || error.message;
}
