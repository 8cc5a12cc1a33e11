// One suggestion: rationale, policy findings on their lines, the diff, the review
// history, and the review actions (approve, ask for a revision, reject, refine).

import { busy, clear, h, pair, prefs, riskBadge, statusBadge, statusLabel, time } from "./dom.js";
import { stats } from "./diff.js";
import { findingView, modeSwitch, renderDiff } from "./diffview.js";
import { inlineError, notify } from "./notify.js";

const ACTION_LABEL = { approve: "Approved", revise: "Asked for a revision", reject: "Rejected" };

export class SuggestionDetail {
  constructor(app, { onBack, onChanged }) {
    this.app = app;
    this.onChanged = onChanged;
    this.id = null;
    this.suggestion = null;
    this.mode = prefs.get("diffMode", "unified");
    this._token = 0;
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
    this.reviewBox = h("section", { class: "review-box", "aria-label": "Review" },
      h("label", { for: "review-comment" }, "Review comment"),
      this.comment,
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
      const s = await this.app.api.suggestion(this.id);
      if (token !== this._token) return;
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
    const diff = renderDiff(s.diff, { mode: this.mode, findings: s.findings, idPrefix: `d-${s.id}` });
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
      this.findingsBlock(s, diff),
      h("section", { class: "block", "aria-labelledby": "diff-title" },
        h("div", { class: "block-head" },
          h("h3", { id: "diff-title" }, "Changes"),
          h("span", { class: "diff-stat" }, `${stat.files} file${stat.files === 1 ? "" : "s"} `,
            h("span", { class: "adds" }, `+${stat.additions}`), " ", h("span", { class: "dels" }, `−${stat.deletions}`)),
          modeSwitch(this.mode, (mode) => this.setMode(mode))),
        diff.element),
      this.historyBlock(s));
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
      r.comment ? h("p", { class: "prose" }, r.comment) : null));
    return h("section", { class: "block", "aria-labelledby": "history-title" },
      h("h3", { id: "history-title" }, "Review history"),
      entries.length ? h("ol", { class: "history" }, entries) : h("p", { class: "muted" }, "No reviews yet."));
  }

  setMode(mode) {
    this.mode = mode;
    prefs.set("diffMode", mode);
    if (this.suggestion) this.render(this.suggestion);
  }

  // -- actions ------------------------------------------------------------------
  async act(action) {
    const s = this.suggestion;
    if (!s) return;
    inlineError(this.reviewError, null);
    const comment = this.comment.value.trim();
    await busy(this.buttons[action], async () => {
      try {
        const updated = await this.app.api.review(s.id, action, comment);
        this.comment.value = "";
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
    if (!this.comment.value.trim()) {
      inlineError(this.reviewError, "Say what should change: asking for a revision needs a comment.");
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

