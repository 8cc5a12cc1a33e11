// Small DOM helpers. Text always goes in as text nodes: nothing from the server is
// ever parsed as HTML.

/**
 * h("button", {class: "primary", on: {click}}, "Approve")
 * Props: class, text, on (event → handler), dataset, and anything else as an attribute
 * (booleans toggle the attribute; null/undefined/false skip it).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (name === "text") el.textContent = value;
    else if (name === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "value") el.value = value;
    else if (name === "checked") el.checked = Boolean(value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

const STATUS_LABELS = {
  pending: "Pending",
  approved: "Approved",
  revision_requested: "Revision requested",
  rejected: "Rejected",
  blocked: "Blocked",
  superseded: "Superseded",
};

export function statusLabel(status) {
  return STATUS_LABELS[status] || status;
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, dataset: { status } }, statusLabel(status));
}

export function riskBadge(risk) {
  return h("span", { class: `badge risk-${risk}`, dataset: { risk }, title: `Risk: ${risk}` },
    `${risk} risk`);
}

export function severityBadge(severity) {
  return h("span", { class: `badge sev-${severity}` }, severity);
}

export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  return h("time", { datetime: iso, title: date.toLocaleString() }, relative(date));
}

export function relative(date) {
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" });
}

/** A button that shows it is busy while `action` runs, and cannot be pressed twice. */
export async function busy(button, action) {
  if (button.disabled) return undefined;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** True when keyboard input belongs to a text field rather than to shortcuts. */
export function isTyping(target) {
  if (!(target instanceof Element)) return false;
  if (target instanceof HTMLElement && target.isContentEditable) return true;
  if (target.closest("textarea, select")) return true;
  const input = target.closest("input");
  return Boolean(input) && !["checkbox", "radio", "button", "submit", "reset"].includes(input.type);
}

/** One term and its description, grouped so they wrap together in a flowing <dl>. */
export function pair(term, description) {
  return h("div", { class: "pair" }, h("dt", {}, term), h("dd", {}, description));
}

let uid = 0;
export function nextId(prefix = "sk") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled field: returns [wrapper, control]. */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId("field");
  const hintEl = hint ? h("p", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return [h("div", { class: "field" }, h("label", { for: control.id }, label), control, hintEl), control];
}

export const prefs = {
  get(name, fallback) {
    try {
      return localStorage.getItem(`storykit.pref.${name}`) ?? fallback;
    } catch {
      return fallback;
    }
  },
  set(name, value) {
    try {
      localStorage.setItem(`storykit.pref.${name}`, value);
    } catch {
      /* storage may be unavailable in a third-party frame */
    }
  },
};
