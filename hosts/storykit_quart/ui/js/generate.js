// The "Generate suggestions" dialog: pick sources and paths, run them, and follow
// their progress through `suggest.progress` events.

import { $$, busy, clear, field, h } from "./dom.js";
import { inlineError, notify } from "./notify.js";

export class GenerateDialog {
  constructor(app, { onDone }) {
    this.app = app;
    this.onDone = onDone;
    this.running = false;
    this.rows = new Map();
    this.sources = h("fieldset", { class: "checks" });
    this.paths = h("textarea", { rows: 3, name: "paths", spellcheck: "false",
      placeholder: "src/app.py\ndocs/" });
    this.progressBox = h("div", { class: "progress-list", role: "status", "aria-live": "polite" });
    this.result = h("div", { class: "result" });
    this.error = h("p", { class: "form-error", role: "alert", hidden: true });
    this.runButton = h("button", { type: "submit", class: "primary" }, "Run");
    const form = h("form", { class: "stack" },
      this.sources,
      field("Paths", this.paths, "Repository-relative paths, one per line. Leave empty for the whole repository.")[0],
      this.progressBox, this.result, this.error,
      h("div", { class: "actions" }, this.runButton,
        h("button", { type: "button", on: { click: () => this.close() } }, "Close")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    this.element = h("dialog", { class: "generate", "aria-labelledby": "generate-title" },
      h("h2", { id: "generate-title" }, "Generate suggestions"), form);
  }

  open() {
    const names = this.app.sources();
    const checks = names.map((name) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "source", value: name, checked: true }), name));
    clear(this.sources, h("legend", {}, "Sources"),
      names.length ? checks : h("p", { class: "muted" },
        "No suggestion sources are loaded. See the System page for the plugins the server loaded."));
    this.runButton.disabled = !names.length;
    if (!this.running) {
      clear(this.result);
      inlineError(this.error, null);
    }
    if (!this.element.open) this.element.showModal();
    const first = this.sources.querySelector("input") || this.paths;
    first.focus();
  }

  close() {
    if (this.element.open) this.element.close();
  }

  progress(event) {
    const data = event.data || {};
    const name = data.source || "source";
    let row = this.rows.get(name);
    if (!row) {
      const bar = h("progress", { "aria-label": `${name} progress` });
      const text = h("span", { class: "muted" });
      row = { bar, text, element: h("div", { class: "progress-row", dataset: { source: name } },
        h("strong", {}, name), bar, text) };
      this.rows.set(name, row);
      this.progressBox.append(row.element);
    }
    const total = Number(data.total);
    const done = Number(data.done);
    if (Number.isFinite(total) && total > 0 && Number.isFinite(done)) {
      row.bar.max = total;
      row.bar.value = Math.min(done, total);
    } else {
      row.bar.removeAttribute("value");
    }
    const parts = [data.stage, data.message,
      Number.isFinite(total) && Number.isFinite(done) ? `${done} / ${total}` : null].filter(Boolean);
    row.text.textContent = parts.join(" · ");
  }

  async run() {
    const chosen = $$("input[name=source]:checked", this.sources).map((i) => i.value);
    const all = $$("input[name=source]", this.sources).length;
    if (!chosen.length) {
      inlineError(this.error, "Choose at least one source.");
      return;
    }
    const paths = this.paths.value.split(/\n+/).map((p) => p.trim()).filter(Boolean);
    inlineError(this.error, null);
    clear(this.result);
    clear(this.progressBox);
    this.rows.clear();
    this.running = true;
    await busy(this.runButton, async () => {
      try {
        const result = await this.app.api.generate(chosen.length === all ? [] : chosen, paths);
        for (const item of result.items) this.app.remember(item);
        let summary = result.count === 1 ? "1 suggestion created" : `${result.count} suggestions created`;
        // What the sources proposed again is stored once; what they replaced is superseded.
        if (result.unchanged) summary += `, ${result.unchanged} unchanged (already open)`;
        if (result.superseded && result.superseded.length) summary += `, ${result.superseded.length} superseded`;
        clear(this.result,
          h("p", { class: "success" }, summary),
          result.items.length ? h("ul", { class: "plain" }, result.items.map((s) => h("li", {},
            h("a", { href: `#/suggestions/${encodeURIComponent(s.id)}`, on: { click: () => this.close() } },
              s.title)))) : null,
          result.errors.length ? h("ul", { class: "form-error" },
            result.errors.map((e) => h("li", {}, e))) : null);
        for (const row of this.rows.values()) {
          if (!row.bar.hasAttribute("value")) row.bar.value = row.bar.max = 1;
        }
        notify("Generation finished", summary);
        this.onDone();
      } catch (err) {
        inlineError(this.error, err);
      } finally {
        this.running = false;
      }
    });
  }
}
