// The Policies screen: each policy's settings as JSON (with a structured view of
// rule lists), saved together with errors shown on the section they concern, and a
// tester that checks a pasted diff against the saved policy.

import { busy, clear, field, h, riskBadge } from "./dom.js";
import { findingView, renderDiff } from "./diffview.js";
import { inlineError, notify } from "./notify.js";

export class PoliciesView {
  constructor(app) {
    this.app = app;
    this.doc = null;
    this.sections = new Map(); // name → {textarea, error, structure}
    this.dirty = false;
  }

  mount(container) {
    this.version = h("code", {}, "…");
    this.notice = h("div", { class: "notice", role: "status", hidden: true });
    this.topError = h("p", { class: "form-error", role: "alert", hidden: true });
    this.saveButton = h("button", { type: "button", class: "primary", disabled: true,
      on: { click: () => busy(this.saveButton, () => this.save()) } }, "Save policies");
    this.discardButton = h("button", { type: "button", disabled: true,
      on: { click: () => this.load() } }, "Discard changes");
    this.list = h("div", { class: "policy-sections" });
    this.root = h("div", { class: "page policies" },
      h("div", { class: "page-head" },
        h("h1", {}, "Policies"),
        h("span", { class: "muted" }, "version ", this.version),
        h("div", { class: "actions push" }, this.discardButton, this.saveButton)),
      h("p", { class: "muted lead" },
        "Every suggestion is screened by these policies before a person sees it. Changing them needs an admin key; each save is validated as a whole."),
      this.notice, this.topError,
      h("div", { class: "two-col" },
        h("section", { "aria-label": "Policy settings" }, this.list),
        this.tester()));
    container.append(this.root);
    this.load();
  }

  async load() {
    try {
      const doc = await this.app.api.policies();
      this.render(doc);
    } catch (err) {
      inlineError(this.topError, err);
    }
  }

  render(doc) {
    this.doc = doc;
    this.version.textContent = doc.version;
    this.notice.hidden = true;
    inlineError(this.topError, null);
    this.sections.clear();
    const names = Object.keys(doc.policies);
    clear(this.list, names.length ? names.map((name) => this.section(name, doc.policies[name]))
      : h("p", { class: "muted" }, "No policy plugins are loaded: suggestions are not screened."));
    this.setDirty(false);
  }

  section(name, config) {
    const textarea = h("textarea", { class: "code-input", spellcheck: "false", rows: 8,
      id: `policy-${name}-json`, dataset: { policy: name } });
    textarea.value = JSON.stringify(config, null, 2);
    textarea.rows = Math.min(24, Math.max(4, textarea.value.split("\n").length + 1));
    const error = h("p", { class: "form-error", role: "alert", hidden: true, id: `policy-${name}-error` });
    textarea.setAttribute("aria-describedby", error.id);
    const structure = h("div", { class: "structure" });
    structure.append(...describe(config));
    const editor = h("details", { class: "editor" },
      h("summary", {}, "Edit as JSON"),
      h("label", { for: textarea.id, class: "visually-hidden" }, `${name} settings (JSON)`),
      textarea);
    const entry = { textarea, error, structure, editor };
    this.sections.set(name, entry);
    let timer = null;
    textarea.addEventListener("input", () => {
      this.setDirty(true);
      clearTimeout(timer);
      timer = setTimeout(() => this.parse(name), 250);
    });
    return h("article", { class: "card policy", dataset: { policy: name }, "aria-labelledby": `policy-${name}-title` },
      h("h2", { id: `policy-${name}-title` }, name),
      structure, error, editor);
  }

  /** Parse one section; show the JSON error in place. Returns the object or undefined. */
  parse(name) {
    const { textarea, error, structure, editor } = this.sections.get(name);
    let value;
    try {
      value = JSON.parse(textarea.value);
    } catch (err) {
      inlineError(error, `Not valid JSON: ${err.message}`);
      textarea.setAttribute("aria-invalid", "true");
      editor.open = true;
      return undefined;
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      inlineError(error, "The settings must be a JSON object ({ … }).");
      textarea.setAttribute("aria-invalid", "true");
      editor.open = true;
      return undefined;
    }
    inlineError(error, null);
    textarea.removeAttribute("aria-invalid");
    clear(structure, describe(value));
    return value;
  }

  setDirty(dirty) {
    this.dirty = dirty;
    this.saveButton.disabled = !dirty;
    this.discardButton.disabled = !dirty;
  }

  async save() {
    inlineError(this.topError, null);
    const document = {};
    let firstBad = null;
    for (const name of this.sections.keys()) {
      const value = this.parse(name);
      if (value === undefined) firstBad = firstBad || name;
      else document[name] = value;
    }
    if (firstBad) {
      this.sections.get(firstBad).textarea.focus();
      return;
    }
    try {
      const saved = await this.app.api.savePolicies(document);
      this.render(saved);
      notify("Policies saved", `Version ${saved.version}`);
    } catch (err) {
      this.showSaveError(err);
    }
  }

  showSaveError(err) {
    if (err.status === 403) {
      inlineError(this.topError, `${err.detail} Changing policies needs an admin key.`);
      return;
    }
    // "risk-regex: rule 'x': …" → the risk-regex section.
    const name = [...this.sections.keys()].sort((a, b) => b.length - a.length)
      .find((n) => err.detail.startsWith(`${n}:`) || err.detail.includes(`${n}.`) || err.detail.startsWith(`root.${n}`));
    if (name) {
      const { textarea, error, editor } = this.sections.get(name);
      editor.open = true;
      inlineError(error, err.detail.startsWith(`${name}:`) ? err.detail.slice(name.length + 1).trim() : err.detail);
      textarea.setAttribute("aria-invalid", "true");
      textarea.focus();
      inlineError(this.topError, `Not saved: ${name} has an error.`);
    } else {
      inlineError(this.topError, err);
    }
  }

  // -- the tester ---------------------------------------------------------------------
  tester() {
    const diff = h("textarea", { class: "code-input", rows: 10, spellcheck: "false", name: "diff",
      placeholder: "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-old\n+new" });
    const title = h("input", { type: "text", name: "title", autocomplete: "off" });
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const output = h("div", { class: "check-output", "aria-live": "polite" });
    const button = h("button", { type: "submit", class: "primary" }, "Check against saved policy");
    const form = h("form", { class: "card stack tester", "aria-labelledby": "tester-title" },
      h("h2", { id: "tester-title" }, "Test a diff"),
      h("p", { class: "muted small" }, "Nothing is stored. Save your edits first to test them."),
      field("Diff", diff)[0], field("Title (optional)", title)[0],
      h("div", { class: "actions" }, button), error, output);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!diff.value.trim()) {
        inlineError(error, "Paste a unified diff to check.");
        diff.focus();
        return;
      }
      busy(button, async () => {
        inlineError(error, null);
        try {
          const decision = await this.app.api.checkPolicy(diff.value, title.value);
          const view = renderDiff(diff.value, { findings: decision.findings, idPrefix: "check" });
          clear(output, h("div", { class: "decision" },
            h("div", { class: "badges" },
              h("span", { class: `badge outcome-${decision.outcome}` }, `outcome: ${decision.outcome}`),
              riskBadge(decision.risk),
              h("span", { class: "muted small" }, `policy ${decision.policy_version}`)),
            decision.findings.length
              ? h("ul", { class: "finding-list" }, decision.findings.map((f) =>
                h("li", {}, findingView(f, { link: view.anchors.get(f) }))))
              : h("p", { class: "muted" }, "No findings: every policy allows this diff."),
            view.element));
        } catch (err) {
          inlineError(error, err);
        }
      });
    });
    return form;
  }

  onEvent(event) {
    if (event.type !== "policy.updated") return;
    if (this.doc && event.data.version === this.doc.version) return;
    if (!this.dirty) {
      this.load();
      notify("Policies updated", `${event.data.by || "Someone"} saved version ${event.data.version}.`);
      return;
    }
    clear(this.notice,
      `${event.data.by || "Someone"} saved a new version (${event.data.version}) while you were editing. `,
      h("button", { type: "button", class: "small", on: { click: () => this.load() } }, "Load it (discards your edits)"));
    this.notice.hidden = false;
  }

  resync() {
    if (!this.dirty) this.load();
  }

  route() {}

  shortcut() {
    return false;
  }

  unmount() {}
}

/** A structured view of a policy section: rule tables, lists and plain values. */
function describe(config) {
  const out = [];
  const plain = [];
  for (const [key, value] of Object.entries(config)) {
    if (Array.isArray(value) && value.length && value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
      const columns = [...new Set(value.flatMap((v) => Object.keys(v)))]
        .sort((a, b) => rank(a) - rank(b));
      out.push(h("div", { class: "table-wrap" }, h("table", { class: "rules" },
        h("caption", {}, `${key} (${value.length})`),
        h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, value.map((rule) => h("tr", {}, columns.map((c) => cell(c, rule[c]))))))));
    } else if (Array.isArray(value)) {
      plain.push([key, value.length ? h("span", { class: "chips" }, value.map((v) => h("code", { class: "chip" }, fmt(v))))
        : h("span", { class: "muted" }, "none")]);
    } else if (value && typeof value === "object") {
      plain.push([key, h("code", {}, JSON.stringify(value))]);
    } else {
      plain.push([key, h("code", {}, fmt(value))]);
    }
  }
  if (plain.length) out.unshift(h("dl", { class: "meta" }, plain.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
  return out;
}

const ORDER = ["id", "name", "severity", "action", "outcome", "pattern", "regex", "message"];

function rank(column) {
  const at = ORDER.indexOf(column);
  return at < 0 ? ORDER.length : at;
}

function cell(column, value) {
  if (column === "severity" || column === "action" || column === "outcome") {
    return h("td", {}, value === undefined ? "" : h("span", { class: `badge sev-${value}` }, fmt(value)));
  }
  if (column === "pattern" || column === "regex") return h("td", {}, h("code", {}, fmt(value)));
  if (column === "id" || column === "name") return h("td", { class: "nowrap" }, h("strong", {}, fmt(value)));
  return h("td", {}, value === undefined ? "" : fmt(value));
}

function fmt(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}
