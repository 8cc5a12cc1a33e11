// The System screen: server health and version, the live connection, loaded plugins
// with their hooks and backends, recent plugin errors, and this session's events.

import { clear, h, time } from "./dom.js";
import { inlineError } from "./notify.js";

const KIND_LABEL = {
  sources: "source",
  refiners: "refiner",
  planners: "planner",
  policies: "policy",
  pr_backends: "PR backend",
};

export class SystemView {
  constructor(app) {
    this.app = app;
  }

  mount(container) {
    this.health = h("div", { class: "stats" });
    this.lastHealth = [null, null];
    this.onState = () => this.renderHealth(...this.lastHealth);
    if (this.app.live) this.app.live.addEventListener("state", this.onState);
    this.plugins = h("div", { class: "table-wrap" });
    this.errors = h("div", {});
    this.activity = h("ol", { class: "activity plain" });
    this.error = h("p", { class: "form-error", role: "alert", hidden: true });
    container.append(h("div", { class: "page system" },
      h("div", { class: "page-head" }, h("h1", {}, "System"),
        h("div", { class: "actions push" },
          h("button", { type: "button", class: "small", on: { click: () => this.load() } }, "Refresh"))),
      this.error,
      h("section", { class: "block", "aria-labelledby": "health-title" },
        h("h2", { id: "health-title" }, "Server"), this.health),
      h("section", { class: "block", "aria-labelledby": "plugins-title" },
        h("h2", { id: "plugins-title" }, "Plugins"), this.plugins),
      h("section", { class: "block", "aria-labelledby": "errors-title" },
        h("h2", { id: "errors-title" }, "Recent plugin errors"), this.errors),
      h("section", { class: "block", "aria-labelledby": "activity-title" },
        h("h2", { id: "activity-title" }, "Activity this session"), this.activity)));
    this.load();
  }

  async load() {
    inlineError(this.error, null);
    const [health, plugins] = await Promise.allSettled([this.app.api.health(), this.app.api.plugins()]);
    this.renderHealth(health.status === "fulfilled" ? health.value : null,
      health.status === "rejected" ? health.reason : null);
    if (plugins.status === "fulfilled") {
      this.app.plugins = plugins.value;
      this.renderPlugins(plugins.value);
    } else {
      inlineError(this.error, plugins.reason);
    }
    this.renderActivity();
  }

  renderHealth(health, error) {
    this.lastHealth = [health, error];
    const live = this.app.live;
    const stat = (label, value, cls = "") => h("div", { class: `stat ${cls}` },
      h("span", { class: "stat-label" }, label), h("span", { class: "stat-value" }, value));
    clear(this.health,
      stat("Health", health ? health.status : (error && error.detail) || "unknown",
        health && health.status === "ok" ? "ok" : "bad"),
      stat("Server version", health ? health.version : "—"),
      stat("Live connection", live ? live.state : "—"),
      stat("Last event id", live && live.lastEventId !== null ? String(live.lastEventId) : "—"),
      stat("Reconnects", live ? String(live.reconnects) : "—"),
      stat("API", this.app.api.base));
  }

  renderPlugins(data) {
    if (!data.plugins.length) {
      clear(this.plugins, h("p", { class: "muted" }, "No plugins are loaded."));
    } else {
      clear(this.plugins, h("table", { class: "plugins-table" },
        h("thead", {}, h("tr", {},
          ["Plugin", "Package", "Provides", "Hooks"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, data.plugins.map((p) => h("tr", { dataset: { plugin: p.name } },
          h("th", { scope: "row" }, p.name),
          h("td", {}, p.package ? `${p.package} ${p.version || ""}` : h("span", { class: "muted" }, "—")),
          h("td", {}, p.backends.length ? h("span", { class: "chips" }, p.backends.map((b) =>
            h("span", { class: "chip" }, `${KIND_LABEL[b.kind] || b.kind}: ${b.name}`)))
            : h("span", { class: "muted" }, "—")),
          h("td", {}, h("span", { class: "chips" }, p.hooks.map((hook) => h("code", { class: "chip" }, hook)))))))));
    }
    clear(this.errors, data.errors.length
      ? h("ul", { class: "plain error-list" }, data.errors.map((e) => h("li", { class: "card error-item" },
        h("div", {}, h("strong", {}, e.plugin), " in ", h("code", {}, e.hook), " · ", time(e.at)),
        h("p", { class: "prose" }, e.message))))
      : h("p", { class: "muted" }, "No plugin errors."));
  }

  renderActivity() {
    const items = this.app.activity.slice(0, 50);
    clear(this.activity, items.length ? items.map((e) => h("li", { class: "activity-item" },
      h("code", { class: "muted" }, `#${e.id}`), " ",
      h("span", { class: "event-type" }, e.type), " ",
      h("span", { class: "muted" }, summary(e)), " ",
      time(e.at), e.replayed ? h("span", { class: "tag" }, "caught up") : null))
      : h("li", { class: "muted" }, "No events since this page opened."));
  }

  onEvent() {
    this.renderActivity();
    this.renderHealth(...this.lastHealth);
  }

  resync() {
    this.load();
  }

  route() {}

  shortcut() {
    return false;
  }

  unmount() {
    if (this.app.live) this.app.live.removeEventListener("state", this.onState);
  }
}

function summary(event) {
  const d = event.data || {};
  if (d.title) return `${d.title}${d.status ? ` → ${d.status}` : ""}${d.by ? ` by ${d.by}` : ""}`;
  if (d.goal) return d.goal;
  if (d.branch) return d.branch;
  if (d.version) return `version ${d.version}${d.by ? ` by ${d.by}` : ""}`;
  if (d.source) return `${d.source}${d.done !== undefined ? ` ${d.done}/${d.total}` : ""}`;
  if (d.count !== undefined) return `${d.count} created`;
  return "";
}
