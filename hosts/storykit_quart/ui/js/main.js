// The dashboard's entry point: the key gate, the live connection, the router and
// the keyboard shortcuts. Each screen is a view module with the same small shape:
//   mount(container, route) · route(route) · onEvent(event, replayed) · resync() ·
//   shortcut(key, keyboardEvent) → handled? · unmount()

import { Api } from "./api.js";
import { KeySource } from "./auth.js";
import { $, $$, clear, field, h, isTyping } from "./dom.js";
import { Live } from "./live.js";
import { inlineError, notify } from "./notify.js";
import { PlansView } from "./plans.js";
import { PoliciesView } from "./policies.js";
import { SuggestionsView } from "./suggestions.js";
import { SystemView } from "./system.js";

const root = document.documentElement;
const config = {
  version: root.dataset.version || "",
  connect: (root.dataset.connect || "").split(/\s+/).filter(Boolean),
};
const VIEWS = { suggestions: SuggestionsView, plans: PlansView, policies: PoliciesView, system: SystemView };
const ACTIVITY_MAX = 200;
const STATE_LABEL = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  resumed: "Resumed",
  offline: "Offline",
  idle: "Not connected",
};

const keys = new KeySource(config);

/** What every view shares. */
const app = {
  api: null,
  live: null,
  keys,
  plugins: null,
  activity: [],
  summaries: new Map(), // suggestion id → {id, title, status, risk, …}, from lists and events
  remember(suggestion) {
    if (suggestion && suggestion.id) {
      app.summaries.set(suggestion.id, { ...app.summaries.get(suggestion.id), ...suggestion });
    }
  },
  sources() {
    const found = [];
    for (const plugin of (app.plugins && app.plugins.plugins) || []) {
      for (const backend of plugin.backends || []) {
        if (backend.kind === "sources") found.push(backend.name);
      }
    }
    return found.sort();
  },
  navigate(hash) {
    if (location.hash !== hash) location.hash = hash;
    else route();
  },
};

let view = null;
let viewName = null;

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const name = VIEWS[parts[0]] ? parts[0] : "suggestions";
  return { name, id: parts[1] || null, rest: parts.slice(2) };
}

function route() {
  if (!app.api) return;
  const next = parseRoute();
  for (const link of $$(".tabs a")) {
    if (link.dataset.view === next.name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view && viewName === next.name) {
    view.route(next);
    return;
  }
  if (view) view.unmount();
  viewName = next.name;
  view = new VIEWS[next.name](app);
  const main = $("#main");
  clear(main);
  view.mount(main, next);
  document.title = `${$(`.tabs a[data-view="${next.name}"]`).textContent} · storykit`;
}

// -- connection state ---------------------------------------------------------
function showState(state, detail) {
  const pill = $("#conn");
  pill.dataset.state = state;
  $("#conn-text").textContent = detail || STATE_LABEL[state] || state;
  pill.title = detail || "";
  keys.tell({ type: "storykit.state", state, detail });
}

// -- the key gate ---------------------------------------------------------------
function showGate(message = "", rejected = "") {
  if (app.live) app.live.stop("Not connected");
  app.live = null;
  app.api = null;
  if (view) view.unmount();
  view = null;
  viewName = null;
  $(".tabs").hidden = true;
  $("#signout").hidden = true;
  $("#shortcuts-button").hidden = true;
  showState("offline", keys.embedded ? "Waiting for a key" : "No key");
  const input = h("input", {
    type: "password", name: "key", autocomplete: "off", spellcheck: "false", required: true,
  });
  const [keyField] = field("API key", input,
    keys.embedded
      ? "The editor normally supplies the key. It is kept in memory for this view only."
      : "Kept in this browser (localStorage) so you enter it once. Ask your storykit operator for one.");
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "gate-form", "aria-labelledby": "gate-title", novalidate: true },
    keyField, error, h("button", { type: "submit", class: "primary" }, "Connect"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      inlineError(error, "Enter a key.");
      input.focus();
      return;
    }
    keys.set(key, { remember: true });
  });
  clear($("#main"), h("section", { class: "gate card" },
    h("h1", { id: "gate-title" }, "Connect to storykit"),
    h("p", { class: "muted" },
      "storykit is a review gate: suggestions from tools and agents wait here for a person."),
    keys.embedded ? h("p", { class: "notice", role: "status" }, "Waiting for the key from the editor…") : null,
    form));
  if (message) inlineError(error, message);
  if (rejected) input.value = rejected; // kept and selected: fix a typo or paste over it
  if (!keys.embedded) {
    input.focus();
    if (rejected) input.select();
  }
}

async function connect() {
  if (app.live) app.live.stop();
  const api = new Api({
    base: keys.apiBase,
    key: () => keys.key,
    onUnauthorized: (err) => unauthorized(err),
    // Every list read is a snapshot: the live stream makes sure what came after it arrives.
    onSnapshot: (head) => app.api === api && app.live && app.live.loaded(head),
  });
  app.api = api;
  showState("connecting", "Connecting…");
  try {
    app.plugins = await api.plugins();
  } catch (err) {
    if (err.status === 401) return; // unauthorized() has shown the gate
    if (err.status !== 0) {
      showGate(err.detail);
      return;
    }
    app.plugins = null; // the server is down: start anyway; the live connection retries
  }
  if (app.api !== api) return;
  $(".tabs").hidden = false;
  $("#signout").hidden = keys.embedded;
  $("#shortcuts-button").hidden = false;
  const live = new Live(api);
  app.live = live;
  /** The detail of one of Live's CustomEvents. @param {Event} e @returns {any} */
  const detail = (e) => /** @type {CustomEvent} */ (e).detail;
  live.addEventListener("state", (e) => showState(detail(e).state, detail(e).detail));
  live.addEventListener("event", (e) => received(detail(e).event, detail(e).replayed));
  live.addEventListener("resync", async (e) => {
    const { from, head } = detail(e);
    if (from !== null && head !== null) {
      // Whichever way they came (stream replay or log), these happened while away.
      for (const item of app.activity) if (item.id > from && item.id <= head) item.replayed = true;
    }
    if (!app.plugins) app.plugins = await api.plugins().catch(() => null);
    if (view) view.resync();
  });
  route();
  live.start();
}

let unauthorizedShown = false;
function unauthorized(err) {
  if (unauthorizedShown) return;
  unauthorizedShown = true;
  keys.tell({ type: "storykit.auth-failed", detail: err.detail });
  const message = `The server did not accept this key (${err.detail}). Each data directory has`
    + " its own keys: use one from the server's API_TOKENS, or the key `storykit serve` printed"
    + " for this repository (kept in the api-key file of its data directory).";
  const rejected = keys.embedded ? "" : keys.key || "";
  if (!keys.embedded) keys.clear();
  else keys.key = null;
  showGate(message, rejected);
  unauthorizedShown = false;
}

function received(event, replayed) {
  app.activity.unshift({ ...event, replayed });
  if (app.activity.length > ACTIVITY_MAX) app.activity.length = ACTIVITY_MAX;
  if (event.type.startsWith("suggest.") && event.data && event.data.id) app.remember(event.data);
  if (view) view.onEvent(event, replayed);
}

// -- keyboard -------------------------------------------------------------------
function onKey(event) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (document.querySelector("dialog[open]")) return; // a dialog handles its own keys
  if (isTyping(event.target)) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  if (!app.api) return;
  if (event.key === "?") {
    event.preventDefault();
    $("#shortcuts").showModal();
    return;
  }
  if (view && view.shortcut && view.shortcut(event.key, event)) event.preventDefault();
}

// -- boot -------------------------------------------------------------------------
function boot() {
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
  $("#shortcuts-button").addEventListener("click", () => $("#shortcuts").showModal());
  $("#signout").addEventListener("click", () => {
    keys.clear();
    notify("Key removed", "Enter a key to connect again.");
  });
  keys.addEventListener("change", () => (keys.key ? connect() : showGate()));
  keys.listen();
  if (keys.key) connect();
  else showGate();
}

boot();
