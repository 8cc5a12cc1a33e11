// Syntax highlighting of diff lines, with highlight.js (vendored under ../vendor/, served
// from storykit's own static files: `make vendor-highlightjs` says where it came from).
//
// Each side of a hunk (the old lines, the new lines) is highlighted as one text, so a
// string or comment that spans lines is coloured right, then cut back into lines. The
// result is plain data, `[{ text, cls }]` per line, and the DOM is built from it with text
// nodes: highlight.js's HTML is read by a small tokenizer that knows only the `<span
// class="…">` and `</span>` it emits and the five entities it escapes, and is never
// parsed as HTML by the browser. Anything else it meets drops the highlighting for that hunk.

import hljs from "../vendor/highlightjs/highlight.min.js";

const BY_NAME = { makefile: "makefile", gnumakefile: "makefile", cmakelists: "cmake" };
const MAX_LINE = 1000; // a longer line (minified code, data) is shown plain
const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'", "&#39;": "'" };
const TOKEN = /<span class="([\w\s-]*)">|<\/span>|&(?:amp|lt|gt|quot|#x27|#39);|[^<&]+/gy;

hljs.configure({ ignoreUnescapedHTML: true });

/** The highlight.js language for a file path, or null (then lines stay plain). */
export function languageFor(path) {
  const name = (path || "").split("/").pop().toLowerCase();
  const base = name.replace(/\.txt$/, "");
  if (BY_NAME[base]) return BY_NAME[base];
  const dot = name.lastIndexOf(".");
  if (dot <= 0 && !name.startsWith(".")) return null;
  const ext = name.slice(dot + 1);
  const language = hljs.getLanguage(ext);
  return language && language !== hljs.getLanguage("plaintext") ? ext : null;
}

/**
 * Highlight `lines` (one text) as `language`: one array of `{ text, cls }` per line,
 * `cls` the highlight.js classes (empty for plain text). Null if it cannot be done.
 */
export function highlightLines(lines, language) {
  if (!language || !lines.length || lines.some((l) => l.length > MAX_LINE)) return null;
  let html;
  try {
    html = hljs.highlight(lines.join("\n"), { language, ignoreIllegals: true }).value;
  } catch {
    return null;
  }
  return splitHtml(html, lines.length);
}

/** highlight.js output → `[{ text, cls }]` per line; null on anything unexpected. */
export function splitHtml(html, count) {
  const out = [[]];
  const stack = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < html.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(html);
    if (!m || m.index !== at) return null;
    const token = m[0];
    if (m[1] !== undefined) stack.push(m[1]);
    else if (token === "</span>") {
      if (!stack.length) return null;
      stack.pop();
    } else {
      const text = ENTITIES[token] ?? token;
      const cls = stack.join(" ");
      text.split("\n").forEach((part, i) => {
        if (i > 0) out.push([]);
        if (!part) return;
        const line = out[out.length - 1];
        const last = line[line.length - 1];
        if (last && last.cls === cls) last.text += part; // an entity splits no piece
        else line.push({ text: part, cls });
      });
    }
  }
  return out.length === count ? out : null;
}

/**
 * Segments of one line for rendering: its highlighted pieces (or the plain text) cut at
 * the `marks` ranges (changed words), each `{ text, cls, mark }`.
 */
export function segments(text, pieces, marks) {
  const base = pieces && pieces.length ? pieces : text ? [{ text, cls: "" }] : [];
  if (!marks || !marks.length) return base.map((p) => ({ ...p, mark: false }));
  const out = [];
  let at = 0;
  for (const piece of base) {
    let start = 0;
    while (start < piece.text.length) {
      const pos = at + start;
      const inside = marks.find(([s, e]) => s <= pos && pos < e);
      const next = inside ? inside[1]
        : Math.min(...marks.map(([s]) => s).filter((s) => s > pos), Infinity);
      const end = Math.min(piece.text.length, next - at);
      out.push({ text: piece.text.slice(start, end), cls: piece.cls, mark: Boolean(inside) });
      start = end;
    }
    at += piece.text.length;
  }
  return out;
}

/**
 * For each line of a hunk, its highlighted pieces: removed lines from the old side,
 * added and context lines from the new side. A Map; empty when nothing is highlighted.
 */
export function highlightHunk(hunk, language) {
  const found = new Map();
  if (!language) return found;
  const old = hunk.lines.filter((l) => l.kind !== "add");
  const now = hunk.lines.filter((l) => l.kind !== "del");
  const oldPieces = highlightLines(old.map((l) => l.text), language);
  const newPieces = highlightLines(now.map((l) => l.text), language);
  if (oldPieces) old.forEach((l, i) => { if (l.kind === "del") found.set(l, oldPieces[i]); });
  if (newPieces) now.forEach((l, i) => found.set(l, newPieces[i]));
  return found;
}
