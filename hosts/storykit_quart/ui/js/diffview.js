// Renders a unified diff per file, unified or side by side, with policy findings shown
// under the lines they concern (a finding's `line` is a line number in the new file).
// Code is syntax-highlighted (./syntax.js) and, in a changed line, the words that changed
// are marked (`mark.wd`, from ./diff.js's changedWords).
//
// Large diffs stay fast: a file of more than COLLAPSE_LINES lines, and every file once
// RENDER_BUDGET lines are on the page, starts collapsed and is rendered only when opened.

import { h, severityBadge } from "./dom.js";
import { changedWords, parseDiff, splitRows } from "./diff.js";
import { highlightHunk, languageFor, segments } from "./syntax.js";

const LINE_CAP = 2000;
export const COLLAPSE_LINES = 400;
export const RENDER_BUDGET = 3000;
const SIGN = { add: "+", del: "−", context: " " };
const STATUS = { added: "new file", deleted: "deleted", renamed: "renamed", modified: "" };

/**
 * @param {{ file?: string | null, line?: number | null, [key: string]: unknown }} finding
 * @param {{ link?: (file: string, line: number | null | undefined) => unknown }} [options]
 */
export function findingView(finding, { link } = {}) {
  const where = finding.file ? `${finding.file}${finding.line ? `:${finding.line}` : ""}` : "";
  return h(
    "div",
    { class: `finding finding-${finding.severity}`, dataset: { rule: finding.rule } },
    severityBadge(finding.severity),
    h("span", { class: "finding-rule" }, finding.rule),
    h("span", { class: "finding-message" }, finding.message),
    finding.policy ? h("span", { class: "finding-policy muted" }, finding.policy) : null,
    where && link ? h("a", { class: "finding-where", href: `#${link}`, on: { click: jump(link) } }, where)
      : where ? h("span", { class: "finding-where muted" }, where) : null,
  );
}

function jump(id) {
  return (event) => {
    event.preventDefault(); // the hash is the router's; scroll instead
    // A collapsed file may not be rendered yet: find it by its body's id, open it, then look.
    const body = document.getElementById(`${id.replace(/-L\d+$/, "")}-body`);
    const file = body ? body.closest(".diff-file") : null;
    const toggle = file && file.classList.contains("collapsed") ? file.querySelector(".diff-file-toggle") : null;
    if (toggle instanceof HTMLElement) toggle.click();
    const target = document.getElementById(id);
    if (!target) return;
    target.scrollIntoView({ block: "center", behavior: "smooth" });
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), 1600);
  };
}

function lineKey(path, line) {
  return `${path}\u0000${line}`;
}

/**
 * A line a reviewer can comment on: the file (as the suggestion's `files` names it), the
 * side (`old`: before the change, `new`: after) and the line number on that side.
 * @typedef {{file: string, side: "old"|"new", line: number}} LineTarget
 */

/** The key of a line on one side, for `lineNotes` lookups. */
export function noteKey(/** @type {string} */ path, /** @type {string} */ side, /** @type {number} */ line) {
  return `${side}\u0000${path}\u0000${line}`;
}

/**
 * @param {string} text the unified diff
 * @param {object} options
 * @param {"unified"|"split"} [options.mode]
 * @param {Array} [options.findings]
 * @param {string} [options.idPrefix] unique per rendered diff, for line anchors
 * @param {(target: LineTarget, row: HTMLTableRowElement) => void} [options.onComment]
 *   when given, every line's number is a button that asks to comment on it
 * @param {(target: LineTarget) => (Node[]|null)} [options.lineNotes]
 *   what to show under a line besides its findings (line comments); called per render
 * @returns {{element: HTMLElement, files: Array, anchors: Map, unplaced: Array}}
 */
export function renderDiff(text, { mode = "unified", findings = [], idPrefix = "diff", onComment, lineNotes } = {}) {
  const files = parseDiff(text);
  const extras = { onComment: onComment || null, lineNotes: lineNotes || null };
  let budget = RENDER_BUDGET;
  const anchors = new Map(); // finding → anchor id of its line
  const placed = new Set();
  const root = h("div", { class: "diff", dataset: { mode } });
  if (!files.length) {
    root.append(h("p", { class: "muted" }, "This diff is empty."));
    return { element: root, files, anchors, unplaced: findings };
  }
  files.forEach((file, index) => {
    const prefix = `${idPrefix}-f${index}`;
    const mine = findings.filter((f) => f.file && (f.file === file.path || f.file === file.oldPath));
    const byLine = new Map();
    for (const finding of mine) {
      if (!finding.line) continue;
      const key = lineKey(file.path, finding.line);
      if (!byLine.has(key)) byLine.set(key, []);
      byLine.get(key).push(finding);
    }
    const size = lineCount(file);
    const lazy = size > COLLAPSE_LINES || size > budget;
    if (!lazy) budget -= size;
    const section = fileSection(file, prefix, mode, byLine, anchors, placed, lazy, extras);
    const loose = mine.filter((f) => !placed.has(f));
    if (loose.length) {
      section.querySelector(".diff-file-notes").append(...loose.map((f) => findingView(f)));
      for (const f of loose) placed.add(f);
    }
    root.append(section);
  });
  const unplaced = findings.filter((f) => !placed.has(f));
  return { element: root, files, anchors, unplaced };
}

function lineCount(file) {
  return file.hunks.reduce((n, hunk) => n + hunk.lines.length, 0);
}

function fileSection(file, prefix, mode, byLine, anchors, placed, lazy, extras) {
  const body = h("div", { class: "diff-body", id: `${prefix}-body` });
  const size = lineCount(file);
  const toggle = h(
    "button",
    { type: "button", class: "diff-file-toggle", "aria-expanded": String(!lazy), "aria-controls": body.id },
    h("span", { class: "chevron", "aria-hidden": "true" }),
    h("span", { class: "diff-path" },
      file.status === "renamed" ? `${file.oldPath} → ${file.newPath}` : file.path),
  );
  const section = h(
    "section",
    { class: "diff-file", dataset: { path: file.path }, "aria-label": `Changes to ${file.path}` },
    h("header", { class: "diff-file-head" },
      toggle,
      STATUS[file.status] ? h("span", { class: "tag" }, STATUS[file.status]) : null,
      lazy ? h("span", { class: "tag large" }, `${size} lines`) : null,
      h("span", { class: "diff-stat" },
        h("span", { class: "adds" }, `+${file.additions}`), " ",
        h("span", { class: "dels" }, `−${file.deletions}`))),
    h("div", { class: "diff-file-notes" }),
    body,
  );
  let rendered = false;
  const show = h("button", { type: "button", class: "ghost small load-diff", on: { click: () => toggle.click() } },
    `Show this file's diff (${size} lines)`);
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") === "true";
    if (!open && !rendered) render(LINE_CAP);
    toggle.setAttribute("aria-expanded", String(!open));
    section.classList.toggle("collapsed", open);
    body.hidden = open;
    show.hidden = !open;
  });
  if (file.binary) {
    body.append(h("p", { class: "muted diff-note" }, "Binary file; not shown."));
    return section;
  }
  if (!file.hunks.length) {
    body.append(h("p", { class: "muted diff-note" }, "No content changes."));
    return section;
  }
  const render = (cap) => {
    rendered = true;
    const table = mode === "split"
      ? splitTable(file, prefix, byLine, anchors, placed, cap, extras)
      : unifiedTable(file, prefix, byLine, anchors, placed, cap, extras);
    body.replaceChildren(table.element);
    if (table.hidden > 0) {
      body.append(h("button", {
        type: "button",
        class: "ghost small show-all",
        on: { click: () => render(Infinity) },
      }, `Show ${table.hidden} more lines`));
    }
  };
  if (lazy) {
    // Not rendered yet, but its findings' lines are known: they link to where they will be.
    placeAhead(file, prefix, byLine, anchors, placed);
    section.classList.add("collapsed");
    body.hidden = true;
    section.insertBefore(show, body);
  } else {
    render(LINE_CAP);
  }
  return section;
}

/** The anchors a file's findings will have once it is rendered (lines within the cap). */
function placeAhead(file, prefix, byLine, anchors, placed) {
  let count = 0;
  for (const hunk of file.hunks) {
    for (const line of hunk.lines) {
      if (count++ >= LINE_CAP) return;
      const notes = line.newNo !== null ? byLine.get(lineKey(file.path, line.newNo)) : null;
      if (notes) annotate(notes, prefix, line.newNo, anchors, placed);
    }
  }
}

/** The code of one line: highlighted pieces, changed words marked, as text nodes. */
function code(line, pieces, marks) {
  return segments(line.text, pieces, marks).map((seg) => {
    const cls = [seg.cls, seg.mark && "wd"].filter(Boolean).join(" ");
    if (seg.mark) return h("mark", { class: cls }, seg.text);
    return cls ? h("span", { class: cls }, seg.text) : seg.text;
  });
}

function annotate(findings, prefix, line, anchors, placed) {
  const id = `${prefix}-L${line}`;
  for (const f of findings) {
    anchors.set(f, id);
    placed.add(f);
  }
  return id;
}

function unifiedTable(file, prefix, byLine, anchors, placed, cap, extras) {
  const tbody = h("tbody");
  const language = languageFor(file.path);
  let count = 0;
  let total = 0;
  for (const hunk of file.hunks) {
    total += hunk.lines.length;
    if (count >= cap) continue;
    const pieces = highlightHunk(hunk, language);
    const marks = changedWords(hunk);
    tbody.append(h("tr", { class: "hunk" }, h("td", { colspan: 3 }, hunk.header)));
    for (const line of hunk.lines) {
      if (count >= cap) break;
      count += 1;
      const notes = line.newNo !== null ? byLine.get(lineKey(file.path, line.newNo)) : null;
      const side = line.kind === "del" ? "old" : "new";
      const row = h("tr", { class: ["line", line.kind, notes && "has-finding"] },
        h("td", { class: "ln" }, side === "old" ? number(file, "old", line.oldNo, extras) : line.oldNo ?? ""),
        h("td", { class: "ln" }, side === "new" ? number(file, "new", line.newNo, extras) : ""),
        h("td", { class: "code" }, h("span", { class: "sign" }, SIGN[line.kind]),
          code(line, pieces.get(line), marks.get(line)),
          line.noNewline ? h("span", { class: "nonl", title: "No newline at end of file" }, "⏎̸") : null));
      tbody.append(row);
      if (notes) {
        row.id = annotate(notes, prefix, line.newNo, anchors, placed);
        tbody.append(h("tr", { class: "finding-row" },
          h("td", { colspan: 3 }, notes.map((f) => findingView(f)))));
      }
      const said = [
        line.kind !== "del" ? ask(extras, file, "new", line.newNo) : null,
        line.kind !== "add" ? ask(extras, file, "old", line.oldNo) : null,
      ].flat().filter(Boolean);
      if (said.length) tbody.append(h("tr", { class: "comment-row" }, h("td", { colspan: 3 }, said)));
    }
  }
  const table = h("table", { class: ["diff-table", "unified", language && "highlighted"], dataset: { language: language || "" } },
    h("caption", { class: "visually-hidden" }, `Changes to ${file.path}, unified`),
    h("colgroup", {}, h("col", { class: "ln-col" }), h("col", { class: "ln-col" }), h("col")),
    tbody);
  return { element: table, hidden: total - count };
}

function splitTable(file, prefix, byLine, anchors, placed, cap, extras) {
  const tbody = h("tbody");
  const language = languageFor(file.path);
  let count = 0;
  let total = 0;
  let pieces = new Map();
  let marks = new Map();
  const cell = (line, side) => {
    if (!line) return [h("td", { class: "ln empty" }), h("td", { class: "code empty" })];
    const kind = line.kind === "context" ? "context" : line.kind;
    const no = side === "left" ? line.oldNo : line.newNo;
    return [
      h("td", { class: ["ln", kind] }, number(file, side === "left" ? "old" : "new", no, extras)),
      h("td", { class: ["code", kind] }, h("span", { class: "sign" }, SIGN[line.kind]),
        code(line, pieces.get(line), marks.get(line))),
    ];
  };
  for (const hunk of file.hunks) {
    const rows = splitRows(hunk);
    total += rows.length;
    if (count >= cap) continue;
    pieces = highlightHunk(hunk, language);
    marks = changedWords(hunk);
    tbody.append(h("tr", { class: "hunk" }, h("td", { colspan: 4 }, hunk.header)));
    for (const row of rows) {
      if (count >= cap) break;
      count += 1;
      const newNo = row.right ? row.right.newNo : null;
      const notes = newNo !== null ? byLine.get(lineKey(file.path, newNo)) : null;
      const tr = h("tr", { class: ["line", "pair", notes && "has-finding"] },
        ...cell(row.left, "left"), ...cell(row.right, "right"));
      tbody.append(tr);
      if (notes) {
        tr.id = annotate(notes, prefix, newNo, anchors, placed);
        tbody.append(h("tr", { class: "finding-row" },
          h("td", { colspan: 4 }, notes.map((f) => findingView(f)))));
      }
      const said = [
        row.left ? ask(extras, file, "old", row.left.oldNo) : null,
        row.right ? ask(extras, file, "new", row.right.newNo) : null,
      ].flat().filter(Boolean);
      if (said.length) tbody.append(h("tr", { class: "comment-row" }, h("td", { colspan: 4 }, said)));
    }
  }
  const table = h("table", { class: ["diff-table", "split", language && "highlighted"], dataset: { language: language || "" } },
    h("caption", { class: "visually-hidden" }, `Changes to ${file.path}, side by side`),
    h("colgroup", {}, h("col", { class: "ln-col" }), h("col"), h("col", { class: "ln-col" }), h("col")),
    tbody);
  return { element: table, hidden: total - count };
}

/**
 * A line number: a button asking to comment on that line when comments are taken.
 * @param {{path: string}} file
 * @param {"old"|"new"} side
 * @param {number|null} line
 * @param {{onComment: Function|null}} extras
 */
function number(file, side, line, extras) {
  if (line === null || line === undefined) return "";
  if (!extras.onComment) return String(line);
  const where = side === "old" ? `line ${line} of ${file.path}, before the change` : `line ${line} of ${file.path}`;
  return h("button", {
    type: "button",
    class: "ln-comment",
    title: "Comment on this line",
    "aria-label": `Comment on ${where}`,
    dataset: { file: file.path, side, line: String(line) },
    on: {
      click: (/** @type {MouseEvent} */ event) => {
        const button = /** @type {HTMLElement} */ (event.currentTarget);
        const row = /** @type {HTMLTableRowElement} */ (button.closest("tr"));
        extras.onComment({ file: file.path, side, line }, row);
      },
    },
  }, String(line));
}

/**
 * What `lineNotes` has for a line, or null.
 * @returns {Node[]|null}
 */
function ask(/** @type {{lineNotes: Function|null}} */ extras, /** @type {{path: string}} */ file,
  /** @type {"old"|"new"} */ side, /** @type {number|null} */ line) {
  if (!extras.lineNotes || line === null || line === undefined) return null;
  const found = extras.lineNotes({ file: file.path, side, line });
  return found && found.length ? found : null;
}

/**
 * Put `node` in a row of its own under a line's row (after the findings and comments
 * already shown under it); returns that row.
 * @param {HTMLTableRowElement} row
 * @param {Node} node
 * @returns {HTMLTableRowElement}
 */
export function insertBelow(row, node) {
  const columns = row.closest("table.split") ? 4 : 3;
  const added = /** @type {HTMLTableRowElement} */ (h("tr", { class: "comment-row draft" }, h("td", { colspan: columns }, node)));
  let after = row;
  while (after.nextElementSibling && after.nextElementSibling.matches(".finding-row, .comment-row")) {
    after = /** @type {HTMLTableRowElement} */ (after.nextElementSibling);
  }
  after.after(added);
  return added;
}

/** A segmented control: Unified | Side by side. */
export function modeSwitch(mode, onChange) {
  const make = (value, label) =>
    h("button", {
      type: "button",
      class: "seg",
      "aria-pressed": String(mode === value),
      dataset: { mode: value },
      on: { click: () => onChange(value) },
    }, label);
  return h("div", { class: "segmented", role: "group", "aria-label": "Diff layout" },
    make("unified", "Unified"), make("split", "Side by side"));
}
