// Where the API key comes from.
//
// Top-level page: typed once by the user and kept in localStorage.
// Framed page (a VS Code webview, say): supplied by the parent with postMessage,
// kept in memory only. A framed page never reads or writes the stored key, so a
// site that frames the dashboard can only ever act with a key it already has.
//
// The protocol (docs/dashboard.md):
//   dashboard → parent  {type: "storykit.ready", version}
//   parent → dashboard  {type: "storykit.key", key, apiBase?, theme?}
//   parent → dashboard  {type: "storykit.clear"}
//   dashboard → parent  {type: "storykit.state", state, detail}
//   dashboard → parent  {type: "storykit.auth-failed", detail}
// Messages are accepted only from window.parent and, when the page URL has
// `?origins=a,b` (exact origins, or `scheme://*`), only from those origins.

const STORE = "storykit.key";
const MAX_KEY = 512;

export function originAllowed(origin, allowed) {
  if (!allowed.length) return true;
  return allowed.some((entry) =>
    entry === "*" || entry === origin ||
    (entry.endsWith("://*") && origin.startsWith(entry.slice(0, -1)) && origin.length > entry.length - 1));
}

export class KeySource extends EventTarget {
  constructor({ version, connect }) {
    super();
    this.version = version;
    this.embedded = window.parent !== window;
    const params = new URLSearchParams(location.search);
    this.allowed = (params.get("origins") || "").split(",").map((s) => s.trim()).filter(Boolean);
    this.connectOrigins = connect;
    this.key = null;
    this.apiBase = location.origin;
    this.parentOrigin = null;
    if (!this.embedded) {
      try {
        this.key = localStorage.getItem(STORE);
      } catch {
        this.key = null;
      }
    }
  }

  /** Start listening for the parent's messages and say we are ready. */
  listen() {
    if (!this.embedded) return;
    window.addEventListener("message", (event) => this._receive(event));
    this._toParent({ type: "storykit.ready", version: this.version }, "*");
  }

  _receive(event) {
    if (event.source !== window.parent || !originAllowed(event.origin, this.allowed)) return;
    const data = event.data;
    if (!data || typeof data !== "object") return;
    if (data.type === "storykit.clear") {
      this.parentOrigin = event.origin;
      this.clear();
      return;
    }
    if (data.type !== "storykit.key") return;
    if (typeof data.key !== "string" || !data.key.trim() || data.key.length > MAX_KEY) return;
    this.parentOrigin = event.origin;
    if (data.theme === "light" || data.theme === "dark") {
      document.documentElement.dataset.theme = data.theme;
    }
    if (data.apiBase !== undefined && data.apiBase !== null) {
      const base = this._checkBase(data.apiBase);
      if (!base) {
        this.tell({ type: "storykit.auth-failed", detail: `apiBase ${data.apiBase} is not allowed` });
        return;
      }
      this.apiBase = base;
    }
    this.set(data.key.trim(), { remember: false });
  }

  _checkBase(raw) {
    let url;
    try {
      url = new URL(String(raw), location.href);
    } catch {
      return null;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    if (url.origin !== location.origin && !this.connectOrigins.includes(url.origin)) return null;
    return (url.origin + url.pathname).replace(/\/+$/, "");
  }

  set(key, { remember = !this.embedded } = {}) {
    const changed = key !== this.key;
    this.key = key;
    if (remember && !this.embedded) {
      try {
        localStorage.setItem(STORE, key);
      } catch {
        /* private mode: the key lasts for this page only */
      }
    }
    if (changed || remember) this.dispatchEvent(new CustomEvent("change", { detail: { key } }));
  }

  clear() {
    this.key = null;
    if (!this.embedded) {
      try {
        localStorage.removeItem(STORE);
      } catch {
        /* nothing stored */
      }
    }
    this.dispatchEvent(new CustomEvent("change", { detail: { key: null } }));
  }

  /** Tell the parent something (to the origin that gave us the key). */
  tell(message) {
    if (this.embedded && this.parentOrigin) this._toParent(message, this.parentOrigin);
  }

  _toParent(message, origin) {
    try {
      window.parent.postMessage(message, origin);
    } catch {
      /* the parent went away */
    }
  }
}
