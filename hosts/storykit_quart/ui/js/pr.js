// The PR panel of a plan: choose a variant, dry-run by default, and show what the
// backend did or would do (branch, operations, the combined diff, the PR link).

import { busy, clear, field, h, prefs, time } from "./dom.js";
import { modeSwitch, renderDiff } from "./diffview.js";
import { inlineError, notify } from "./notify.js";

export class PrPanel {
  constructor(app, plan) {
    this.app = app;
    this.plan = plan;
    this.mode = prefs.get("diffMode", "unified");
    this.result = null;
    this.variant = h("select", { name: "variant" });
    this.branch = h("input", { type: "text", name: "branch", autocomplete: "off", spellcheck: false,
      placeholder: "storykit/<plan>-<variant>" });
    this.dryRun = h("input", { type: "checkbox", name: "dry_run", checked: true });
    this.warning = h("p", { class: "notice warn", hidden: true });
    // Shown instead of offering a real run the server would refuse (PR_BACKEND=dry-run).
    this.previewOnly = h("p", { class: "notice small preview-only", hidden: true },
      "Real runs are off: this server's PR_BACKEND is dry-run, which only previews. To create branches, "
      + "set PR_BACKEND=git (a local branch) or github/gitlab (a pull request) and restart the server.");
    this.button = h("button", { type: "submit", class: "primary" }, "Preview PR (dry run)");
    this.error = h("p", { class: "form-error", role: "alert", hidden: true });
    this.output = h("div", { class: "pr-output", "aria-live": "polite" });
    this.history = h("ul", { class: "plain pr-history" });
    this.dryRun.addEventListener("change", () => this.syncButton());
    this.variant.addEventListener("change", () => (this._touched = true));
    const form = h("form", { class: "pr-form" },
      field("Variant", this.variant)[0],
      field("Branch (optional)", this.branch,
        "Used exactly, and refused if it exists. Empty: storykit's name, with -2, -3, … added when it is taken.")[0],
      h("label", { class: "check" }, this.dryRun,
        h("span", {}, h("strong", {}, "Dry run"), " — show the branch, operations and diff; change nothing")),
      this.previewOnly,
      this.warning,
      h("div", { class: "actions" }, this.button),
      this.error);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(this.button, () => this.open());
    });
    this.element = h("section", { class: "block card pr-panel", "aria-labelledby": "pr-title" },
      h("h3", { id: "pr-title" }, "Open a pull request"), form, this.history, this.output);
    this.update(plan);
  }

  update(plan) {
    this.plan = plan;
    const current = this.variant.value || plan.selected || (plan.variants[0] && plan.variants[0].key);
    clear(this.variant, plan.variants.map((v) => h("option", { value: v.key, selected: v.key === current },
      `${v.title}${v.key === plan.selected ? " (selected)" : ""}`)));
    if (plan.selected && !this._touched) this.variant.value = plan.selected;
    this.syncButton();
    this.renderHistory();
  }

  /** The PR backend a real run uses (PR_BACKEND), when the server said; null if unknown. */
  realBackend() {
    const plugins = this.app.plugins;
    return plugins && typeof plugins.pr_backend === "string" ? plugins.pr_backend : null;
  }

  syncButton() {
    const backend = this.realBackend();
    const previewOnly = backend === "dry-run";
    if (previewOnly) this.dryRun.checked = true;
    this.dryRun.disabled = previewOnly;
    this.previewOnly.hidden = !previewOnly;
    const dry = this.dryRun.checked;
    this.warning.textContent = `This is not a dry run: the server's PR backend (PR_BACKEND${backend ? `=${backend}` : ""}) `
      + "will create a branch or a pull request.";
    this.button.textContent = dry ? "Preview PR (dry run)" : "Create branch / PR";
    this.button.classList.toggle("danger", !dry);
    this.button.classList.toggle("primary", dry);
    this.warning.hidden = dry;
  }

  async open() {
    inlineError(this.error, null);
    const branch = this.branch.value.trim() || null;
    try {
      const result = await this.app.api.openPr(this.plan.id, this.variant.value, this.dryRun.checked, branch);
      this.result = result;
      notify(result.dry_run ? "Dry run finished" : "Branch created", result.url || result.branch);
      this.renderResult();
    } catch (err) {
      // A failed run (a diff that does not apply, a refused real run) must not leave an
      // earlier "nothing was changed" result on screen as if it were this one's.
      this.result = null;
      clear(this.output);
      inlineError(this.error, err);
    }
  }

  /** A pr.* event about this plan arrived (it is in the activity list already). */
  noteEvent() {
    this.renderHistory();
  }

  renderHistory() {
    const events = this.app.activity.filter((e) => (e.type === "pr.created" || e.type === "pr.dry_run")
      && e.data.plan_id === this.plan.id);
    clear(this.history, events.slice(0, 5).map((e) => h("li", { class: "muted small" },
      e.type === "pr.created" ? "PR created" : "Dry run", " of ", h("code", {}, e.data.variant), " by ",
      e.data.by || "someone", " · ", e.data.url ? h("a", { href: e.data.url, target: "_blank", rel: "noopener noreferrer" },
        e.data.url) : h("code", {}, e.data.branch), " · ", time(e.at))));
  }

  renderResult() {
    const r = this.result;
    if (!r) return;
    const diff = renderDiff(r.diff, { mode: this.mode, idPrefix: `pr-${this.plan.id}` });
    clear(this.output, h("div", { class: "pr-result" },
      h("div", { class: "badges" },
        h("span", { class: r.dry_run ? "badge status-pending" : "badge status-approved" },
          r.dry_run ? "Dry run: nothing was changed" : "Created")),
      h("dl", { class: "meta" },
        h("dt", {}, "Branch"), h("dd", {}, h("code", { class: "pr-branch" }, r.branch)),
        h("dt", {}, "Backend"), h("dd", {}, r.backend),
        r.commit ? [h("dt", {}, "Commit"), h("dd", {}, h("code", {}, r.commit))] : null,
        r.url ? [h("dt", {}, "Pull request"), h("dd", {},
          h("a", { class: "pr-url", href: r.url, target: "_blank", rel: "noopener noreferrer" }, r.url))] : null),
      h("h4", {}, "Operations"),
      r.operations.length ? h("ol", { class: "operations" }, r.operations.map((op) => h("li", {}, h("code", {}, op))))
        : h("p", { class: "muted" }, "The backend listed no operations."),
      h("div", { class: "block-head" }, h("h4", {}, "Diff"),
        modeSwitch(this.mode, (mode) => {
          this.mode = mode;
          prefs.set("diffMode", mode);
          this.renderResult();
        })),
      diff.element));
  }
}
