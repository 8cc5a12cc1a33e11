// One suggestion: rationale, policy findings on their lines, the diff with its line
// comments, its revisions (and what changed since an earlier one), the review history, and
// the review actions (approve, ask for a revision, reject, refine).

import { $, busy, clear, field, h, pair, prefs, riskBadge, statusBadge, statusLabel, time } from "./dom.js";
import { stats } from "./diff.js";
import { findingView, insertBelow, modeSwitch, noteKey, renderDiff } from "./diffview.js";
import { inlineError, notify } from "./notify.js";

const ACTION_LABEL = { approve: "Approved", revise: "Asked for a revision", reject: "Rejected" };

/**
 * A line comment not sent yet.
 * @typedef {{file: string, side: "old"|"new", line: number, body: string}} PendingComment
 */

/** @param {{file: string, side: string, line: number}} c */
function where(c) {
  return `${c.file}:${c.line}${c.side === "old" ? " (before the change)" : ""}`;
}

export class SuggestionDetail {
  constructor(app, { onBack, onChanged }) {
    this.app = app;
    this.onChanged = onChanged;
    this.id = null;
    this.suggestion = null;
    this.mode = prefs.get("diffMode", "unified");
    this._token = 0;
    /** @type {PendingComment[]} */
    this.pending = [];
    /** @type {Array<{number: number, title: string, by: string, via: string, at: string}>} */
    this.revisions = [];
    /** @type {number|null} the earlier revision the diff is compared with, or null: the whole change */
    this.compare = null;
    /** @type {{from: number, to: number, diff: string, notes: string[]}|null} */
    this.interdiff = null;
    this.compareError = null;
    this.body = h("div", { class: "detail-body" });
    this.head = h("div");
    this.content = h("div");
    this.element = h("section", { class: "pane detail-pane", "aria-label": "Suggestion", tabindex: "-1" },
      h("button", { type: "button", class: "ghost small back", on: { click: onBack } }, "← All suggestions"),
      this.body);
    this.buildReviewBox();
    this.element.append(this.confirm);
    this.placeholder();
  }

  placeholder() {
    clear(this.body, h("div", { class: "placeholder" },
      h("p", {}, "Select a suggestion to review it."),
      h("p", { class: "muted" }, "Move with j and k, approve with a, ask for a revision with r, reject with x. ? lists every shortcut.")));
  }

  buildReviewBox() {
    this.comment = h("textarea", { id: "review-comment", rows: 2, name: "comment",
      placeholder: "Optional to approve or reject; required to ask for a revision (Ctrl+Enter sends it)" });
    this.reviewError = h("p", { class: "form-error", role: "alert", hidden: true });
    this.blockedNote = h("p", { class: "notice small", hidden: true });
    this.buttons = {
      approve: h("button", { type: "button", class: "primary", dataset: { action: "approve" },
        title: "Approve (a)", on: { click: () => this.approve() } }, "Approve"),
      revise: h("button", { type: "button", dataset: { action: "revise" },
        title: "Ask for a revision (r)", on: { click: () => this.revise() } }, "Ask for revision"),
      reject: h("button", { type: "button", class: "danger", dataset: { action: "reject" },
        title: "Reject (x)", on: { click: () => this.reject() } }, "Reject"),
    };
    this.comment.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.revise();
      }
    });
    this.refineInstructions = h("textarea", { id: "refine-instructions", rows: 2,
      placeholder: "What should the LLM change? (optional)" });
    this.refineError = h("div", { class: "form-error", role: "alert", hidden: true });
    this.refineButton = h("button", { type: "button", on: { click: () => this.refine() } }, "Refine");
    this.pendingList = h("ul", { class: "pending-comments", "aria-label": "Line comments to send" });
    this.pendingBox = h("div", { class: "pending-box", hidden: true },
      h("p", { class: "pending-title" }), this.pendingList);
    this.reviewBox = h("section", { class: "review-box", "aria-label": "Review" },
      h("label", { for: "review-comment" }, "Review comment"),
      this.comment,
      this.pendingBox,
      h("div", { class: "actions" }, this.buttons.approve, this.buttons.revise, this.buttons.reject),
      this.blockedNote,
      this.reviewError,
      h("details", { class: "refine" },
        h("summary", {}, "Refine with the LLM"),
        h("label", { for: "refine-instructions" }, "Instructions for the refiner"),
        this.refineInstructions,
        h("div", { class: "actions" }, this.refineButton),
        this.refineError));
    this.confirm = h("dialog", { class: "confirm", "aria-labelledby": "reject-title" });
  }

  async show(id) {
    if (id === this.id && this.suggestion) return;
    this.id = id;
    this.suggestion = null;
    this.pending = [];
    this.draft = null;
    this.revisions = [];
    this.compare = null;
    this.interdiff = null;
    this.compareError = null;
    this.showPending();
    this.comment.value = "";
    this.refineInstructions.value = "";
    inlineError(this.reviewError, null);
    inlineError(this.refineError, null);
    if (!id) {
      this.placeholder();
      return;
    }
    clear(this.body, h("p", { class: "muted loading" }, "Loading…"));
    await this.reload();
  }

  async reload() {
    if (!this.id) return;
    const token = ++this._token;
    try {
      const id = this.id;
      const [s, revisions] = await Promise.all([
        this.app.api.suggestion(id),
        this.app.api.revisions(id).then((r) => r.items, () => null),
      ]);
      if (token !== this._token) return;
      if (revisions) this.revisions = revisions;
      if (this.compare !== null && this.compare < s.revision) {
        await this.loadInterdiff(s, this.compare, token);
        if (token !== this._token) return;
      } else {
        this.compare = null;
        this.interdiff = null;
      }
      this.render(s);
    } catch (err) {
      if (token !== this._token) return;
      clear(this.body, h("div", { class: "placeholder" },
        h("p", { class: "form-error", role: "alert" }, err.status === 404 ? "No such suggestion." : err.detail)));
    }
  }

  /** A live event about the open suggestion: say so when its diff changed under the reader. */
  noteEvent(event) {
    const s = this.suggestion;
    if (!s) return;
    if (event.type === "suggest.revised" || event.type === "suggest.refined") {
      notify(`Revision ${event.data.revision} arrived`, `“${s.title}” has a new diff.`);
    }
  }

  render(s) {
    const previous = this.suggestion;
    this.suggestion = s;
    this.app.remember(s);
    const keepScroll = previous && previous.id === s.id ? this.element.scrollTop : 0;
    const blocked = s.status === "blocked";
    const rejected = s.status === "rejected";
    this.buttons.approve.disabled = blocked || rejected;
    this.blockedNote.hidden = !(blocked || rejected);
    this.blockedNote.textContent = blocked
      ? "Blocked by policy: it cannot be approved. Ask the proposer for a revision, or reject it."
      : rejected ? "Rejected: it can be approved again only after a new revision." : "";
    const comparing = this.compare !== null && this.interdiff !== null;
    const draftFocused = Boolean(this.draft && this.draft.form.contains(document.activeElement));
    const placed = this.placeComments(s);
    const diff = comparing
      ? renderDiff(this.interdiff.diff, { mode: this.mode, idPrefix: `i-${s.id}` })
      : renderDiff(s.diff, {
        mode: this.mode, findings: s.findings, idPrefix: `d-${s.id}`,
        onComment: (target, row) => this.openCommentForm(target, row),
        lineNotes: (target) => this.notesAt(placed, target),
      });
    const whole = comparing ? renderDiff(s.diff, { findings: s.findings }) : diff;
    const stat = stats(diff.files);
    // The review box stays in place (never re-inserted), so a live update does not take
    // the focus or the half-typed comment away from the reviewer.
    if (this.reviewBox.parentNode !== this.body) clear(this.body, this.head, this.reviewBox, this.content);
    clear(this.head,
      h("header", { class: "detail-head" },
        h("h2", { id: "detail-title" }, s.title),
        h("div", { class: "badges" }, statusBadge(s.status), riskBadge(s.risk),
          s.decision ? h("span", { class: `badge outcome-${s.decision.outcome}` },
            `policy: ${s.decision.outcome}`) : null),
        h("dl", { class: "meta" },
          pair("From", s.source === "api" ? `${s.agent} (through the API)` : `${s.source} (${s.agent})`),
          pair("Revision", String(s.revision)),
          pair("Base", h("code", {}, s.base_ref)),
          pair("Updated", time(s.updated_at)),
          pair("Id", h("code", {}, s.id)))));
    clear(this.content,
      h("section", { class: "block", "aria-labelledby": "rationale-title" },
        h("h3", { id: "rationale-title" }, "Rationale"),
        s.rationale ? h("p", { class: "prose" }, s.rationale) : h("p", { class: "muted" }, "No rationale given.")),
      this.findingsBlock(s, whole),
      this.revisionsBlock(s),
      h("section", { class: "block", "aria-labelledby": "diff-title" },
        h("div", { class: "block-head" },
          h("h3", { id: "diff-title" }, comparing ? `Changes since revision ${this.compare}` : "Changes"),
          h("span", { class: "diff-stat" }, `${stat.files} file${stat.files === 1 ? "" : "s"} `,
            h("span", { class: "adds" }, `+${stat.additions}`), " ", h("span", { class: "dels" }, `−${stat.deletions}`)),
          this.compareSelect(s),
          modeSwitch(this.mode, (mode) => this.setMode(mode))),
        comparing
          ? h("p", { class: "notice small compare-note" },
            `What revision ${s.revision} changed since revision ${this.compare}: the difference between the files`
            + " each one produces, not the whole change. Line comments are taken on the whole change.")
          : null,
        this.compareError ? h("p", { class: "form-error", role: "alert" }, this.compareError) : null,
        comparing && this.interdiff.notes && this.interdiff.notes.length
          ? h("ul", { class: "compare-notes" }, this.interdiff.notes.map((n) => h("li", {}, n))) : null,
        comparing ? null : this.outdatedBlock(placed),
        diff.element),
      this.historyBlock(s));
    if (!comparing) this.restoreDraft(draftFocused);
    this.element.scrollTop = keepScroll;
  }

  findingsBlock(s, diff) {
    const items = s.findings.map((f) => h("li", {}, findingView(f, { link: diff.anchors.get(f) })));
    return h("section", { class: "block", "aria-labelledby": "findings-title" },
      h("h3", { id: "findings-title" }, `Policy findings (${s.findings.length})`),
      s.findings.length
        ? h("ul", { class: "finding-list" }, items)
        : h("p", { class: "muted" }, "No findings: every policy allowed this diff."));
  }

  historyBlock(s) {
    const entries = s.reviews.slice().reverse().map((r) => h("li", { class: `review review-${r.action}` },
      h("div", { class: "review-line" },
        h("strong", {}, r.reviewer), " ",
        h("span", { class: `badge action-${r.action}` }, ACTION_LABEL[r.action] || r.action), " ",
        time(r.at),
        r.diff_hash !== s.diff_hash ? h("span", { class: "tag", title: r.diff_hash }, "earlier revision") : null),
      r.comment ? h("p", { class: "prose" }, r.comment) : null,
      r.comments && r.comments.length
        ? h("ul", { class: "review-comments" }, r.comments.map((c) => h("li", {},
          h("code", {}, where(c)), c.outdated ? h("span", { class: "tag outdated" }, "outdated") : null,
          " ", c.body)))
        : null));
    return h("section", { class: "block", "aria-labelledby": "history-title" },
      h("h3", { id: "history-title" }, "Review history"),
      entries.length ? h("ol", { class: "history" }, entries) : h("p", { class: "muted" }, "No reviews yet."));
  }

  setMode(mode) {
    this.mode = mode;
    prefs.set("diffMode", mode);
    if (this.suggestion) this.render(this.suggestion);
  }

  // -- line comments --------------------------------------------------------------
  /**
   * The stored line comments of `s`, by the line they are on now; those whose line a later
   * revision changed are `outdated`.
   * @param {any} s
   * @returns {{at: Map<string, Array<{review: any, comment: any}>>, outdated: Array<{review: any, comment: any}>}}
   */
  placeComments(s) {
    const at = new Map();
    const outdated = [];
    for (const review of s.reviews) {
      for (const comment of review.comments || []) {
        const earlier = review.revision !== s.revision && review.diff_hash !== s.diff_hash;
        const line = earlier ? comment.current_line : comment.line;
        if (comment.outdated || line === null || line === undefined) {
          outdated.push({ review, comment });
          continue;
        }
        const key = noteKey(comment.file, comment.side, line);
        if (!at.has(key)) at.set(key, []);
        at.get(key).push({ review, comment, earlier });
      }
    }
    return { at, outdated };
  }

  /** What shows under one line: its stored comments, then the pending ones. */
  notesAt(placed, /** @type {{file: string, side: "old"|"new", line: number}} */ target) {
    const key = noteKey(target.file, target.side, target.line);
    const nodes = (placed.at.get(key) || []).map((item) => this.commentView(item));
    for (const p of this.pending) {
      if (noteKey(p.file, p.side, p.line) === key) nodes.push(this.pendingView(p));
    }
    return nodes;
  }

  commentView(/** @type {{review: any, comment: any, earlier?: boolean}} */ { review, comment, earlier }) {
    return h("div", { class: ["line-comment", comment.outdated && "outdated"],
      dataset: { file: comment.file, side: comment.side, line: String(comment.line) } },
    h("div", { class: "line-comment-head" },
      h("strong", {}, review.reviewer), " ",
      h("span", { class: `badge action-${review.action}` }, ACTION_LABEL[review.action] || review.action), " ",
      time(review.at),
      comment.outdated ? h("span", { class: "tag outdated", title: "A later revision changed this line" }, "outdated") : null,
      earlier || comment.outdated ? h("span", { class: "tag" }, `revision ${review.revision}, line ${comment.line}`) : null),
    h("p", { class: "prose" }, comment.body));
  }

  pendingView(/** @type {PendingComment} */ p) {
    return h("div", { class: "line-comment pending", dataset: { file: p.file, side: p.side, line: String(p.line) } },
      h("div", { class: "line-comment-head" },
        h("span", { class: "tag" }, "pending"), " ",
        h("span", { class: "muted" }, "sent with your review"),
        h("button", { type: "button", class: "ghost small", "aria-label": `Remove the comment on ${where(p)}`,
          on: { click: () => this.removePending(p) } }, "Remove")),
      h("p", { class: "prose" }, p.body));
  }

  /** Comments whose lines changed since: listed above the diff, marked outdated. */
  outdatedBlock(/** @type {{outdated: Array<any>}} */ placed) {
    if (!placed.outdated.length) return null;
    return h("section", { class: "outdated-comments", "aria-label": "Outdated line comments" },
      h("h4", {}, `Comments on lines a later revision changed (${placed.outdated.length})`),
      placed.outdated.map((item) => h("div", { class: "outdated-item" },
        h("code", {}, where(item.comment)), this.commentView(item))));
  }

  /**
   * A small form under the line: the comment is kept (pending) until a decision sends it.
   * @param {{file: string, side: "old"|"new", line: number}} target
   * @param {HTMLTableRowElement} row
   */
  openCommentForm(target, row) {
    const open = $(".comment-form", this.content);
    if (open) open.closest("tr").remove();
    this.draft = null;
    const text = h("textarea", { rows: 2, name: "line-comment", class: "line-comment-text" });
    const [wrap] = field(`Comment on ${where(target)}`, text);
    const form = h("form", { class: "comment-form" }, wrap,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary small" }, "Add comment"),
        h("button", { type: "button", class: "small", on: { click: () => {
          added.remove();
          this.draft = null;
          this.focusLine(target);
        } } }, "Cancel")),
      h("p", { class: "hint" }, "Sent with your decision (approve, ask for revision or reject). Ctrl+Enter adds it."));
    const add = () => {
      const body = text.value.trim();
      if (!body) {
        text.focus();
        return;
      }
      this.pending.push({ ...target, body });
      this.draft = null;
      this.showPending();
      this.render(this.suggestion);
      this.focusLine(target);
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      add();
    });
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        add();
      }
    });
    const added = insertBelow(row, form);
    this.draft = { target, form };
    text.focus();
  }

  /** A live re-render must not take a half-written line comment away: put its form back. */
  restoreDraft(/** @type {boolean} */ hadFocus) {
    const draft = this.draft;
    if (!draft || draft.form.isConnected) return;
    const selector = `.ln-comment[data-file="${CSS.escape(draft.target.file)}"][data-side="${draft.target.side}"][data-line="${draft.target.line}"]`;
    const button = $(selector, this.content);
    if (!button) {
      this.draft = null;
      return;
    }
    insertBelow(/** @type {HTMLTableRowElement} */ (button.closest("tr")), draft.form);
    if (hadFocus) /** @type {HTMLElement} */ ($("textarea", draft.form)).focus();
  }

  focusLine(/** @type {{file: string, side: string, line: number}} */ target) {
    const selector = `.ln-comment[data-file="${CSS.escape(target.file)}"][data-side="${target.side}"][data-line="${target.line}"]`;
    const button = /** @type {HTMLElement|null} */ ($(selector, this.content));
    if (button) button.focus({ preventScroll: true });
  }

  removePending(/** @type {PendingComment} */ p) {
    this.pending = this.pending.filter((q) => q !== p);
    this.showPending();
    if (this.suggestion) this.render(this.suggestion);
  }

  /** The review box lists the line comments that go with the next decision. */
  showPending() {
    const n = this.pending.length;
    this.pendingBox.hidden = n === 0;
    this.pendingBox.firstElementChild.textContent = `${n} line comment${n === 1 ? "" : "s"} to send with your decision`;
    clear(this.pendingList, this.pending.map((p) => h("li", {},
      h("code", {}, where(p)), " ", p.body, " ",
      h("button", { type: "button", class: "ghost small", "aria-label": `Remove the comment on ${where(p)}`,
        on: { click: () => this.removePending(p) } }, "Remove"))));
  }

  // -- revisions ------------------------------------------------------------------
  revisionsBlock(s) {
    const items = this.revisions.length ? this.revisions
      : [{ number: s.revision, title: s.title, by: s.agent, at: s.updated_at, via: "" }];
    return h("section", { class: "block", "aria-labelledby": "revisions-title" },
      h("h3", { id: "revisions-title" }, `Revisions (${items.length})`),
      h("ol", { class: "revisions" }, items.slice().reverse().map((r) => h("li", {
        class: "revision", dataset: { revision: String(r.number) } },
      h("strong", {}, `Revision ${r.number}`), " ", time(r.at), " ",
      h("span", { class: "muted" }, `by ${r.by || "?"}`), " ",
      h("span", { class: "revision-title" }, r.title),
      r.number === s.revision ? h("span", { class: "tag" }, "current") : null,
      r.number < s.revision
        ? h("button", { type: "button", class: "ghost small",
          "aria-pressed": String(this.compare === r.number),
          on: { click: () => this.setCompare(r.number) } }, `Changes since revision ${r.number}`)
        : null))));
  }

  compareSelect(s) {
    if (s.revision < 2) return null;
    const select = h("select", { name: "compare", class: "compare-select" },
      h("option", { value: "", selected: this.compare === null }, `The whole change (revision ${s.revision})`),
      Array.from({ length: s.revision - 1 }, (_, i) => s.revision - 1 - i).map((n) =>
        h("option", { value: String(n), selected: this.compare === n }, `Changes since revision ${n}`)));
    select.addEventListener("change", () => this.setCompare(select.value ? Number(select.value) : null));
    const [wrap] = field("Show", select);
    wrap.classList.add("inline-field");
    return wrap;
  }

  async loadInterdiff(s, from, token) {
    try {
      const result = await this.app.api.interdiff(s.id, from, s.revision);
      if (token !== this._token) return;
      this.interdiff = result;
      this.compareError = null;
    } catch (err) {
      if (token !== this._token) return;
      this.interdiff = null;
      this.compare = null;
      this.compareError = `Cannot show the changes since revision ${from}: ${err.detail}`;
    }
  }

  /** Show what changed since revision `n` (null: the whole change). */
  async setCompare(/** @type {number|null} */ n) {
    const s = this.suggestion;
    if (!s) return;
    const token = ++this._token;
    this.compareError = null;
    this.compare = n;
    this.interdiff = null;
    if (n !== null) await this.loadInterdiff(s, n, token);
    if (token !== this._token) return;
    this.render(s);
  }

  // -- actions ------------------------------------------------------------------
  async act(action) {
    const s = this.suggestion;
    if (!s) return;
    inlineError(this.reviewError, null);
    const comment = this.comment.value.trim();
    const comments = this.pending.map(({ file, line, side, body }) => ({ file, line, side, body }));
    await busy(this.buttons[action], async () => {
      try {
        const updated = await this.app.api.review(s.id, action, comment, comments);
        this.comment.value = "";
        this.pending = [];
        this.showPending();
        notify(ACTION_LABEL[action], `“${updated.title}” is now ${statusLabel(updated.status).toLowerCase()}.`);
        if (this.id === updated.id) this.render(updated);
        this.onChanged();
      } catch (err) {
        // The server's detail says what is wrong (a role, or your own proposal) and what to do.
        inlineError(this.reviewError, err);
      }
    });
  }

  approve() {
    return this.act("approve");
  }

  revise() {
    if (!this.comment.value.trim() && !this.pending.length) {
      inlineError(this.reviewError,
        "Say what should change: asking for a revision needs a comment, or a comment on a line.");
      this.comment.focus();
      return undefined;
    }
    return this.act("revise");
  }

  reject() {
    const s = this.suggestion;
    if (!s) return;
    const yes = h("button", { type: "button", class: "danger", autofocus: true }, "Reject");
    const no = h("button", { type: "button" }, "Cancel");
    clear(this.confirm,
      h("h2", { id: "reject-title" }, "Reject this suggestion?"),
      h("p", {}, `“${s.title}” will be rejected. It can only come back as a new revision.`),
      this.comment.value.trim() ? h("p", { class: "muted" }, `Comment: ${this.comment.value.trim()}`) : null,
      this.pending.length ? h("p", { class: "muted" }, `With ${this.pending.length} line comment${this.pending.length === 1 ? "" : "s"}.`) : null,
      h("div", { class: "actions" }, yes, no));
    yes.addEventListener("click", () => {
      this.confirm.close();
      this.act("reject");
    });
    no.addEventListener("click", () => this.confirm.close());
    this.confirm.showModal();
    yes.focus();
  }

  async refine() {
    const s = this.suggestion;
    if (!s) return;
    inlineError(this.refineError, null);
    await busy(this.refineButton, async () => {
      try {
        const updated = await this.app.api.refine(s.id, this.refineInstructions.value.trim());
        notify("Refined", `Revision ${updated.revision} is ready for review.`);
        this.render(updated);
        this.onChanged();
      } catch (err) {
        if (err.status === 503) {
          clear(this.refineError, h("strong", {}, "No LLM refiner is configured. "), err.detail);
          this.refineError.hidden = false;
        } else {
          inlineError(this.refineError, err);
        }
      }
    });
  }

  shortcut(key) {
    if (!this.suggestion) return false;
    switch (key) {
      case "a":
        if (!this.buttons.approve.disabled) this.approve();
        else inlineError(this.reviewError, this.blockedNote.textContent);
        return true;
      case "r":
        this.comment.focus();
        inlineError(this.reviewError, null);
        return true;
      case "x":
        this.reject();
        return true;
      case "u":
        this.setMode(this.mode === "unified" ? "split" : "unified");
        return true;
      default:
        return false;
    }
  }
}

