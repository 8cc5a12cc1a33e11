// The Plans screen: plans beside either the form for a new plan or one plan's
// variants side by side, with selection and the PR panel.

import { busy, clear, field, h, pair, riskBadge, time } from "./dom.js";
import { renderDiff } from "./diffview.js";
import { inlineError, notify, notifyError } from "./notify.js";
import { PrPanel } from "./pr.js";
import { stats, parseDiff } from "./diff.js";

const REFRESH_DELAY = 150;
const PR_STATE = { open: "Open", merged: "Merged", closed: "Closed" };
const CHECKS = { none: "No checks", pending: "Checks pending", passing: "Checks passing", failing: "Checks failing" };

/** The newest pull request of a plan, or null. */
function latestPr(plan) {
  const prs = plan.pull_requests || [];
  return prs.length ? prs[prs.length - 1] : null;
}

/** What became of the pull requests opened from a plan (kept current by pr.updated events). */
export function prStates(plan) {
  const prs = plan.pull_requests || [];
  if (!prs.length) return null;
  return h("section", { class: "block pr-tracked", "aria-labelledby": "prs-title" },
    h("h3", { id: "prs-title" }, `Pull requests (${prs.length})`),
    h("ul", { class: "plain pr-states" }, prs.map((pr) => {
      const runs = Object.entries(pr.check_runs || {});
      return h("li", { class: "pr-state", dataset: { backend: pr.backend, number: String(pr.number), state: pr.state, checks: pr.checks } },
        h("div", { class: "pr-state-head" },
          h("a", { class: "pr-link", href: pr.url, target: "_blank", rel: "noopener noreferrer" },
            `${pr.repository} #${pr.number}`),
          h("span", { class: `badge pr-${pr.state}` }, PR_STATE[pr.state] || pr.state),
          h("span", { class: `badge checks-${pr.checks}` }, CHECKS[pr.checks] || pr.checks)),
        h("div", { class: "muted small" },
          h("code", {}, pr.variant), " · ", h("code", {}, pr.branch),
          pr.head ? [" · ", h("code", { title: pr.head }, pr.head.slice(0, 10))] : null,
          " · updated ", time(pr.updated_at)),
        runs.length ? h("ul", { class: "plain check-runs small" }, runs.map(([name, state]) =>
          h("li", { class: `check-run checks-${state}`, dataset: { state } },
            h("span", { class: "check-dot", "aria-hidden": "true" }), `${name}: ${state}`))) : null);
    })));
}

export class PlansView {
  constructor(app) {
    this.app = app;
    this.plans = [];
    this.plan = null;
    this.route_ = { id: null };
    this._timer = null;
    this._token = 0;
  }

  mount(container, route) {
    this.list = h("ul", { class: "item-list", "aria-label": "Plans" });
    this.listError = h("p", { class: "form-error", role: "alert", hidden: true });
    this.body = h("div", { class: "detail-body" });
    this.detail = h("section", { class: "pane detail-pane wide", "aria-label": "Plan", tabindex: "-1" },
      h("button", { type: "button", class: "ghost small back",
        on: { click: () => this.app.navigate("#/plans") } }, "← All plans"),
      this.body);
    this.root = h("div", { class: "split-view", dataset: { view: "plans" } },
      h("section", { class: "pane list-pane", "aria-labelledby": "plans-title" },
        h("div", { class: "pane-head" },
          h("h1", { id: "plans-title" }, "Plans"),
          h("a", { class: "button small", href: "#/plans/new" }, "New plan")),
        this.listError, this.list),
      this.detail);
    container.append(this.root);
    this.loadList();
    this.route(route);
  }

  async loadList() {
    try {
      const page = await this.app.api.plans(null, 100);
      this.plans = page.items;
      inlineError(this.listError, null);
      this.renderList();
    } catch (err) {
      inlineError(this.listError, err);
    }
  }

  renderList() {
    if (!this.plans.length) {
      clear(this.list, h("li", { class: "empty" }, "No plans yet. Approve suggestions, then make a plan from them."));
      return;
    }
    clear(this.list, this.plans.map((p) => h("li", {},
      h("a", { class: "item", href: `#/plans/${encodeURIComponent(p.id)}`,
        "aria-current": p.id === this.route_.id ? "true" : null, dataset: { id: p.id } },
        h("span", { class: "item-title" }, p.goal),
        h("span", { class: "item-meta" },
          h("span", { class: "muted" }, `${p.variants.length} variant${p.variants.length === 1 ? "" : "s"}`),
          p.selected ? h("span", { class: "badge status-approved" }, `selected: ${p.selected}`)
            : h("span", { class: "badge status-pending" }, "nothing selected"),
          latestPr(p) ? h("span", { class: `badge pr-${latestPr(p).state}` }, `PR ${latestPr(p).state}`) : null,
          h("span", { class: "muted" }, p.created_by),
          time(p.created_at))))));
  }

  route(route) {
    this.route_ = route;
    this.root.dataset.hasDetail = route.id ? "true" : "false";
    this.renderList();
    if (!route.id) {
      this.plan = null;
      clear(this.body, h("div", { class: "placeholder" },
        h("p", {}, "Choose a plan, or make a new one from the approved suggestions."),
        h("a", { class: "button primary", href: "#/plans/new" }, "New plan")));
    } else if (route.id === "new") {
      this.plan = null;
      this.showForm();
    } else {
      this.showPlan(route.id);
    }
  }

  // -- a new plan -------------------------------------------------------------------
  async showForm() {
    const token = ++this._token;
    this.goal = this.goal || h("input", { type: "text", name: "goal", required: true, autocomplete: "off",
      placeholder: "Tidy imports across the service" });
    this.checks = h("fieldset", { class: "checks suggestion-checks" }, h("legend", {}, "Approved suggestions"));
    this.formError = h("p", { class: "form-error", role: "alert", hidden: true });
    const submit = h("button", { type: "submit", class: "primary" }, "Create plan");
    const form = h("form", { class: "card stack plan-form", "aria-labelledby": "new-plan-title", novalidate: true },
      h("h2", { id: "new-plan-title" }, "New plan"),
      field("Goal", this.goal, "What the change as a whole should achieve; it names the branch and PR.")[0],
      this.checks, this.formError, h("div", { class: "actions" }, submit));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(submit, () => this.create());
    });
    clear(this.body, form);
    this.goal.focus();
    await this.loadApproved(token);
  }

  async loadApproved(token = this._token) {
    if (!this.checks) return;
    try {
      const page = await this.app.api.suggestions({ status: "approved" }, null, 200);
      if (token !== this._token) return;
      const before = new Map(Array.from(this.checks.querySelectorAll("input")).map((i) => [i.value, i.checked]));
      const rows = page.items.map((s) => {
        this.app.remember(s);
        return h("label", { class: "check suggestion-check" },
          h("input", { type: "checkbox", name: "suggestion", value: s.id, checked: before.get(s.id) ?? true }),
          h("span", { class: "item-title" }, s.title), riskBadge(s.risk),
          h("span", { class: "muted" }, `${s.files.length} file${s.files.length === 1 ? "" : "s"}`));
      });
      clear(this.checks, h("legend", {}, `Approved suggestions (${page.items.length})`),
        rows.length ? rows : h("p", { class: "muted" },
          "Nothing is approved yet. Approve suggestions on the Suggestions page first."));
    } catch (err) {
      inlineError(this.formError, err);
    }
  }

  async create() {
    const goal = this.goal.value.trim();
    const ids = Array.from(this.checks.querySelectorAll("input:checked")).map((i) => i.value);
    if (!goal) {
      inlineError(this.formError, "Say what the plan is for.");
      this.goal.focus();
      return;
    }
    if (!ids.length) {
      inlineError(this.formError, "Choose at least one approved suggestion.");
      return;
    }
    try {
      const plan = await this.app.api.createPlan(goal, ids);
      this.goal.value = "";
      notify("Plan created", `${plan.variants.length} variants to compare.`);
      this.plans = [plan, ...this.plans.filter((p) => p.id !== plan.id)];
      this.app.navigate(`#/plans/${encodeURIComponent(plan.id)}`);
    } catch (err) {
      inlineError(this.formError, err);
    }
  }

  // -- one plan -----------------------------------------------------------------------
  async showPlan(id) {
    const token = ++this._token;
    if (!this.plan || this.plan.id !== id) {
      this.plan = null;
      clear(this.body, h("p", { class: "muted loading" }, "Loading…"));
    }
    try {
      const plan = await this.app.api.plan(id);
      if (token !== this._token) return;
      await this.fetchTitles(plan);
      if (token !== this._token) return;
      this.renderPlan(plan);
    } catch (err) {
      if (token === this._token) {
        clear(this.body, h("p", { class: "form-error", role: "alert" }, err.status === 404 ? "No such plan." : err.detail));
      }
    }
  }

  async fetchTitles(plan) {
    const missing = new Set();
    for (const v of plan.variants) {
      const ids = [...v.suggestion_ids, ...v.conflicts.flatMap((c) => c.suggestion_ids)];
      for (const id of ids) if (!this.app.summaries.has(id)) missing.add(id);
    }
    await Promise.all([...missing].slice(0, 20).map((id) =>
      this.app.api.suggestion(id).then((s) => this.app.remember(s)).catch(() => null)));
  }

  renderPlan(plan) {
    const same = this.plan && this.plan.id === plan.id && this.pr;
    this.plan = plan;
    if (!same) {
      this.pr = new PrPanel(this.app, plan);
      this.planHead = h("div");
      this.planPrs = h("div");
      this.planVariants = h("div");
      clear(this.body, this.planHead, this.planPrs, this.planVariants, this.pr.element);
    } else {
      this.pr.update(plan); // the panel stays in place, keeping focus and its last result
    }
    const selected = plan.variants.find((v) => v.key === plan.selected);
    clear(this.planHead,
      h("header", { class: "detail-head" },
        h("h2", {}, plan.goal),
        h("div", { class: "badges" },
          selected ? h("span", { class: "badge status-approved" }, `Selected: ${selected.title}`)
            : h("span", { class: "badge status-pending" }, "No variant selected")),
        h("dl", { class: "meta" },
          pair("Made by", plan.created_by),
          pair("Created", time(plan.created_at)),
          plan.selected_by ? pair("Selected by", plan.selected_by) : null,
          pair("Id", h("code", {}, plan.id)))));
    clear(this.planPrs, prStates(plan));
    clear(this.planVariants,
      h("section", { class: "block", "aria-labelledby": "variants-title" },
        h("h3", { id: "variants-title" }, `Variants (${plan.variants.length})`),
        h("div", { class: "variants" }, plan.variants.map((v) => this.variantCard(plan, v)))));
  }

  variantCard(plan, v) {
    const isSelected = plan.selected === v.key;
    const files = parseDiff(v.diff);
    const s = stats(files);
    const diffBox = h("div", { class: "variant-diff" });
    const details = h("details", { class: "variant-details" },
      h("summary", {}, `Combined diff · ${s.files} file${s.files === 1 ? "" : "s"} `,
        h("span", { class: "adds" }, `+${s.additions}`), " ", h("span", { class: "dels" }, `−${s.deletions}`)),
      diffBox);
    details.addEventListener("toggle", () => {
      if (details.open && !diffBox.firstChild) {
        diffBox.append(renderDiff(v.diff, { mode: "unified", idPrefix: `v-${plan.id}-${v.key}` }).element);
      }
    });
    const select = h("button", { type: "button", class: isSelected ? "primary" : "",
      "aria-pressed": String(isSelected), dataset: { variant: v.key } },
      isSelected ? "Selected" : "Select this variant");
    select.addEventListener("click", () => busy(select, () => this.select(plan, v)));
    return h("article", { class: ["card", "variant", isSelected && "selected"], dataset: { variant: v.key },
      "aria-labelledby": `variant-${v.key}-title` },
      h("header", { class: "variant-head" },
        h("h4", { id: `variant-${v.key}-title` }, v.title),
        riskBadge(v.risk)),
      h("p", { class: "muted small" }, h("code", {}, v.key), v.planner ? ` · planner ${v.planner}` : ""),
      h("h5", {}, `Suggestions (${v.suggestion_ids.length})`),
      h("ul", { class: "plain variant-suggestions" }, v.suggestion_ids.map((id) => {
        const known = this.app.summaries.get(id);
        return h("li", {}, h("a", { href: `#/suggestions/${encodeURIComponent(id)}` }, known ? known.title : id),
          known && known.risk ? [" ", riskBadge(known.risk)] : null);
      })),
      h("h5", {}, "Conflicts"),
      v.conflicts.length
        ? h("ul", { class: "plain conflicts" }, v.conflicts.map((c) => h("li", { class: "conflict" },
          h("strong", {}, c.file),
          h("div", {}, c.suggestion_ids.map((id) => this.title(id)).join(" × ")),
          c.detail ? h("div", { class: "muted" }, this.withTitles(c.detail)) : null)))
        : h("p", { class: "muted" }, "No conflicts."),
      details,
      h("div", { class: "actions" }, select));
  }

  title(id) {
    const known = this.app.summaries.get(id);
    return known ? `“${known.title}”` : id;
  }

  /** A planner's text with suggestion ids replaced by their titles. */
  withTitles(text) {
    return text.replace(/\bsug_[0-9A-Za-z]+/g, (id) => this.title(id));
  }

  async select(plan, v) {
    try {
      const updated = await this.app.api.select(plan.id, v.key);
      notify("Variant selected", v.title);
      this.plans = this.plans.map((p) => (p.id === updated.id ? updated : p));
      this.renderList();
      this.renderPlan(updated);
      const again = this.planVariants.querySelector(`button[data-variant="${CSS.escape(v.key)}"]`);
      if (again) again.focus();
    } catch (err) {
      notifyError(err, "Could not select the variant");
    }
  }

  // -- live -------------------------------------------------------------------------
  onEvent(event) {
    if (event.type.startsWith("plan.")) {
      this.refreshSoon(event.data.id === this.route_.id);
    } else if (event.type.startsWith("pr.")) {
      if (this.plan && event.data.plan_id === this.plan.id) this.pr.noteEvent();
      // A PR opened or heard of (a webhook, a poll): its state shows on the plan and the list.
      if (event.type !== "pr.dry_run") this.refreshSoon(event.data.plan_id === this.route_.id);
    } else if (event.type === "suggest.reviewed" || event.type === "suggest.revised") {
      if (this.route_.id === "new") this.loadApproved();
    }
  }

  refreshSoon(withPlan) {
    this._withPlan = this._withPlan || withPlan;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      this.loadList();
      if (this._withPlan && this.route_.id && this.route_.id !== "new") this.showPlan(this.route_.id);
      this._withPlan = false;
    }, REFRESH_DELAY);
  }

  resync() {
    this.loadList();
    if (this.route_.id === "new") this.loadApproved();
    else if (this.route_.id) this.showPlan(this.route_.id);
  }

  shortcut() {
    return false;
  }

  unmount() {
    clearTimeout(this._timer);
    this._token += 1;
  }
}
