// The Suggestions screen: a filterable list (kept live) beside the open suggestion, and
// bulk decisions on the suggestions ticked in it (mouse, shift-click ranges, or `s`).

import { $, $$, busy, clear, field, h, riskBadge, statusBadge, statusLabel, time } from "./dom.js";
import { GenerateDialog } from "./generate.js";
import { inlineError, notify } from "./notify.js";
import { SuggestionDetail } from "./suggestion-detail.js";

const STATUSES = [
  ["", "All statuses"],
  ["pending", "Pending"],
  ["approved", "Approved"],
  ["revision_requested", "Revision requested"],
  ["rejected", "Rejected"],
  ["blocked", "Blocked"],
  ["superseded", "Superseded"],
];
const RISKS = [["", "Any risk"], ["low", "Low"], ["medium", "Medium"], ["high", "High"], ["unknown", "Unknown"]];
const PAGE = 100;
const REFRESH_DELAY = 150;

function options(select, pairs, current) {
  clear(select, pairs.map(([value, label]) => h("option", { value, selected: value === current }, label)));
}

export class SuggestionsView {
  constructor(app) {
    this.app = app;
    this.filters = { status: "", risk: "", source: "", agent: "" };
    this.items = [];
    this.nextAfter = null;
    this.selectedId = null;
    this.agents = new Set();
    this._timer = null;
    this._token = 0;
    /** @type {Set<string>} ids ticked for a bulk decision */
    this.picked = new Set();
    /** @type {Map<string, {ok: boolean, text: string}>} the last bulk decision's outcome per id */
    this.outcomes = new Map();
    /** @type {number|null} index of the last ticked row, where a shift-click range starts */
    this.anchor = null;
  }

  mount(container, route) {
    this.detail = new SuggestionDetail(this.app, {
      onBack: () => this.app.navigate("#/suggestions"),
      onChanged: () => this.refreshSoon(),
    });
    this.generate = new GenerateDialog(this.app, { onDone: () => this.refreshSoon() });
    this.count = h("span", { class: "count muted", "aria-live": "polite" });
    this.list = h("ul", { class: "item-list", "aria-label": "Suggestions" });
    this.more = h("button", { type: "button", class: "ghost small", hidden: true,
      on: { click: () => this.load({ append: true }) } }, "Load more");
    this.error = h("p", { class: "form-error", role: "alert", hidden: true });
    this.root = h("div", { class: "split-view", dataset: { view: "suggestions" } },
      h("section", { class: "pane list-pane", "aria-labelledby": "suggestions-title" },
        h("div", { class: "pane-head" },
          h("h1", { id: "suggestions-title" }, "Suggestions"), this.count,
          h("button", { type: "button", class: "small", title: "Generate suggestions (g)",
            on: { click: () => this.generate.open() } }, "Generate…")),
        this.filterForm(),
        this.bulkBar(),
        this.error,
        this.list,
        this.more),
      this.detail.element);
    container.append(this.root, this.generate.element);
    this.load();
    this.route(route);
  }

  filterForm() {
    const status = h("select", { name: "status" });
    options(status, STATUSES, this.filters.status);
    const risk = h("select", { name: "risk" });
    options(risk, RISKS, this.filters.risk);
    const source = h("select", { name: "source" });
    this.sourceSelect = source;
    this.fillSources();
    this.agentList = h("datalist", { id: "agent-options" });
    const agent = h("input", { type: "search", name: "agent", list: "agent-options",
      placeholder: "any agent", autocomplete: "off" });
    const form = h("form", { class: "filters", role: "search", "aria-label": "Filter suggestions" },
      field("Status", status)[0], field("Risk", risk)[0], field("Source", source)[0],
      field("Agent", agent)[0], this.agentList);
    form.addEventListener("submit", (event) => event.preventDefault());
    form.addEventListener("change", () => this.setFilters(form));
    let typing = null;
    agent.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => this.setFilters(form), 300);
    });
    return form;
  }

  fillSources() {
    const names = ["api", ...this.app.sources()];
    options(this.sourceSelect, [["", "All sources"], ...names.map((n) => [n, n === "api" ? "api (agents)" : n])],
      this.filters.source);
  }

  setFilters(form) {
    const data = new FormData(form);
    const next = {
      status: String(data.get("status") || ""),
      risk: String(data.get("risk") || ""),
      source: String(data.get("source") || ""),
      agent: String(data.get("agent") || "").trim(),
    };
    if (JSON.stringify(next) === JSON.stringify(this.filters)) return;
    this.filters = next;
    this.load();
  }

  async load({ append = false } = {}) {
    const token = ++this._token;
    try {
      const page = await this.app.api.suggestions(this.filters, append ? this.nextAfter : null, PAGE);
      if (token !== this._token) return;
      inlineError(this.error, null);
      this.items = append ? [...this.items, ...page.items] : page.items;
      this.nextAfter = page.next_after;
      for (const item of page.items) {
        this.app.remember(item);
        this.agents.add(item.agent);
      }
      this.renderList();
    } catch (err) {
      if (token === this._token) inlineError(this.error, err);
    }
  }

  /** Re-read the list (and the open suggestion) a moment later, once per burst of events. */
  refreshSoon({ detail = false } = {}) {
    this._refreshDetail = this._refreshDetail || detail;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      const withDetail = this._refreshDetail;
      this._refreshDetail = false;
      this.reloadList();
      if (withDetail) this.detail.reload();
    }, REFRESH_DELAY);
  }

  async reloadList() {
    // Keep as many rows as are shown, so a refresh does not shrink a list the user paged.
    const shown = Math.max(PAGE, this.items.length);
    const token = ++this._token;
    try {
      const page = await this.app.api.suggestions(this.filters, null, Math.min(shown, 200));
      if (token !== this._token) return;
      this.items = page.items;
      this.nextAfter = page.next_after;
      for (const item of page.items) this.app.remember(item);
      inlineError(this.error, null);
      this.renderList();
    } catch (err) {
      if (token === this._token) inlineError(this.error, err);
    }
  }

  renderList() {
    const focused = document.activeElement && document.activeElement.closest(".item-list a");
    const focusedId = focused instanceof HTMLElement ? focused.dataset.id : null;
    clear(this.agentList, [...this.agents].sort().map((a) => h("option", { value: a })));
    this.count.textContent = `${this.items.length}${this.nextAfter ? "+" : ""} shown`;
    if (!this.items.length) {
      clear(this.list, h("li", { class: "empty" },
        Object.values(this.filters).some(Boolean)
          ? "No suggestions match these filters."
          : "No suggestions yet. Agents submit them through the API, or generate some."));
    } else {
      clear(this.list, this.items.map((s, index) => this.row(s, index)));
    }
    const shown = new Set(this.items.map((s) => s.id));
    for (const id of this.picked) if (!shown.has(id)) this.picked.delete(id); // never act unseen
    this.showBulk();
    this.more.hidden = !this.nextAfter;
    if (focusedId) {
      const again = $(`.item-list a[data-id="${CSS.escape(focusedId)}"]`, this.list);
      if (again) again.focus();
    }
  }

  row(s, index) {
    const current = s.id === this.selectedId;
    const outcome = this.outcomes.get(s.id);
    const pick = h("input", { type: "checkbox", class: "pick", checked: this.picked.has(s.id),
      "aria-label": `Select “${s.title}”`, dataset: { id: s.id } });
    pick.addEventListener("click", (event) => this.onPick(index, pick.checked, event.shiftKey));
    return h("li", { class: ["selectable", this.picked.has(s.id) && "picked"], dataset: { id: s.id, status: s.status } },
      pick,
      h("a", { href: `#/suggestions/${encodeURIComponent(s.id)}`, class: "item",
        "aria-current": current ? "true" : null, dataset: { id: s.id } },
        h("span", { class: "item-title" }, s.title),
        h("span", { class: "item-meta" },
          statusBadge(s.status), riskBadge(s.risk),
          h("span", { class: "muted" }, s.source === "api" ? s.agent : s.source),
          h("span", { class: "muted" }, `${s.files.length} file${s.files.length === 1 ? "" : "s"}`),
          s.revision > 1 ? h("span", { class: "muted" }, `rev ${s.revision}`) : null,
          time(s.updated_at)),
        outcome ? h("span", { class: ["bulk-outcome", outcome.ok ? "ok" : "refused"] }, outcome.text) : null));
  }

  // -- bulk decisions ------------------------------------------------------------
  bulkBar() {
    this.bulkCount = h("span", { class: "bulk-count", "aria-live": "polite" });
    this.bulkComment = h("textarea", { rows: 1, name: "bulk-comment", placeholder: "Optional; recorded on each one" });
    this.bulkButtons = {
      approve: h("button", { type: "button", class: "primary small", on: { click: () => this.decide("approve") } }, "Approve"),
      reject: h("button", { type: "button", class: "danger small", on: { click: () => this.confirmReject() } }, "Reject"),
    };
    this.bulkSummary = h("p", { class: "bulk-summary small", role: "status" });
    this.bulkError = h("p", { class: "form-error", role: "alert", hidden: true });
    this.bulkConfirm = h("dialog", { class: "confirm", "aria-labelledby": "bulk-reject-title" });
    this.bulk = h("section", { class: "bulk-bar", "aria-label": "Decide on the selected suggestions", hidden: true },
      h("div", { class: "actions" }, this.bulkCount,
        h("button", { type: "button", class: "ghost small", on: { click: () => this.pickAll(true) } }, "Select all shown"),
        h("button", { type: "button", class: "ghost small", on: { click: () => this.pickAll(false) } }, "Clear selection")),
      field("Comment for each", this.bulkComment)[0],
      h("div", { class: "actions" }, this.bulkButtons.approve, this.bulkButtons.reject),
      this.bulkSummary, this.bulkError, this.bulkConfirm);
    return this.bulk;
  }

  /** A tick from the mouse or Space: with shift, every row from the last one ticked too. */
  onPick(/** @type {number} */ index, /** @type {boolean} */ on, /** @type {boolean} */ range) {
    const from = range && this.anchor !== null ? Math.min(this.anchor, index) : index;
    const to = range && this.anchor !== null ? Math.max(this.anchor, index) : index;
    for (let i = from; i <= to; i += 1) {
      const id = this.items[i] && this.items[i].id;
      if (!id) continue;
      if (on) this.picked.add(id);
      else this.picked.delete(id);
    }
    this.anchor = index;
    this.syncPicks();
  }

  pickAll(/** @type {boolean} */ on) {
    this.picked = new Set(on ? this.items.map((s) => s.id) : []);
    this.anchor = null;
    this.syncPicks();
  }

  /** `s`: tick or untick the focused row (or the open suggestion). */
  toggleFocused() {
    const focused = document.activeElement && document.activeElement.closest(".item-list li[data-id]");
    const id = focused instanceof HTMLElement ? focused.dataset.id : this.selectedId;
    const index = this.items.findIndex((s) => s.id === id);
    if (index < 0) return false;
    this.onPick(index, !this.picked.has(this.items[index].id), false);
    return true;
  }

  syncPicks() {
    for (const li of $$(".item-list li[data-id]", this.list)) {
      const on = this.picked.has(li.dataset.id);
      li.classList.toggle("picked", on);
      const box = /** @type {HTMLInputElement|null} */ ($("input.pick", li));
      if (box) box.checked = on;
    }
    this.showBulk();
  }

  showBulk() {
    const n = this.picked.size;
    this.bulk.hidden = n === 0 && !this.bulkSummary.textContent;
    this.bulkCount.textContent = `${n} selected`;
    this.bulkButtons.approve.textContent = `Approve ${n}`;
    this.bulkButtons.reject.textContent = `Reject ${n}`;
    this.bulkButtons.approve.disabled = n === 0;
    this.bulkButtons.reject.disabled = n === 0;
  }

  confirmReject() {
    const n = this.picked.size;
    if (!n) return;
    const yes = h("button", { type: "button", class: "danger" }, `Reject ${n}`);
    const no = h("button", { type: "button" }, "Cancel");
    clear(this.bulkConfirm,
      h("h2", { id: "bulk-reject-title" }, `Reject ${n} suggestion${n === 1 ? "" : "s"}?`),
      h("p", {}, "Each comes back only as a new revision."),
      h("div", { class: "actions" }, yes, no));
    yes.addEventListener("click", () => {
      this.bulkConfirm.close();
      this.decide("reject");
    });
    no.addEventListener("click", () => this.bulkConfirm.close());
    this.bulkConfirm.showModal();
    yes.focus();
  }

  /** One decision on every ticked row; each one's outcome is shown on its row. */
  async decide(/** @type {"approve"|"reject"} */ action) {
    const ids = this.items.map((s) => s.id).filter((id) => this.picked.has(id));
    if (!ids.length) return;
    inlineError(this.bulkError, null);
    await busy(this.bulkButtons[action], async () => {
      try {
        const reply = await this.app.api.reviewBulk(ids, action, this.bulkComment.value.trim());
        this.outcomes = new Map();
        for (const item of reply.items) {
          if (item.ok) {
            this.picked.delete(item.id);
            const shown = this.items.find((s) => s.id === item.id);
            if (shown) shown.status = item.status; // the refresh that follows confirms it
            this.outcomes.set(item.id, { ok: true, text: statusLabel(item.status) });
          } else {
            const problem = item.problem || {};
            this.outcomes.set(item.id, { ok: false, text: `Refused: ${problem.detail || problem.title || "not allowed"}` });
          }
        }
        this.bulkComment.value = "";
        const done = action === "approve" ? "approved" : "rejected";
        this.bulkSummary.textContent = `${reply.ok} ${done}${reply.refused ? `, ${reply.refused} refused (still selected)` : ""}.`;
        notify(action === "approve" ? "Approved" : "Rejected", this.bulkSummary.textContent);
        this.renderList();
        this.refreshSoon({ detail: this.selectedId !== null && ids.includes(this.selectedId) });
      } catch (err) {
        inlineError(this.bulkError, err);
      }
    });
    this.showBulk(); // busy() re-enabled the button; none may be selected now
  }

  route(route) {
    this.selectedId = route.id;
    this.root.dataset.hasDetail = route.id ? "true" : "false";
    for (const link of $$(".item-list a", this.list)) {
      if (link.dataset.id === route.id) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
    this.detail.show(route.id);
  }

  onEvent(event) {
    if (event.type === "suggest.progress") {
      this.generate.progress(event);
      return;
    }
    if (event.type === "policy.updated") return;
    if (!event.type.startsWith("suggest.")) return;
    const ids = event.data.ids || (event.data.id ? [event.data.id] : []);
    if (event.data.agent) this.agents.add(event.data.agent);
    this.refreshSoon({ detail: this.selectedId !== null && ids.includes(this.selectedId) });
    if (this.selectedId && ids.includes(this.selectedId)) this.detail.noteEvent(event);
  }

  resync() {
    this.fillSources();
    this.refreshSoon({ detail: true });
  }

  move(step) {
    if (!this.items.length) return;
    const index = this.items.findIndex((s) => s.id === this.selectedId);
    const next = index < 0 ? (step > 0 ? 0 : this.items.length - 1)
      : Math.min(this.items.length - 1, Math.max(0, index + step));
    const id = this.items[next].id;
    this.app.navigate(`#/suggestions/${encodeURIComponent(id)}`);
    const link = $(`.item-list a[data-id="${CSS.escape(id)}"]`, this.list);
    if (link) {
      link.focus({ preventScroll: true });
      link.scrollIntoView({ block: "nearest" });
    }
  }

  shortcut(key) {
    switch (key) {
      case "j":
      case "ArrowDown":
        this.move(1);
        return true;
      case "k":
      case "ArrowUp":
        this.move(-1);
        return true;
      case "g":
        this.generate.open();
        return true;
      case "s":
        return this.toggleFocused();
      default:
        return this.selectedId ? this.detail.shortcut(key) : false;
    }
  }

  unmount() {
    clearTimeout(this._timer);
    this._token += 1;
    this.generate.close();
  }
}
