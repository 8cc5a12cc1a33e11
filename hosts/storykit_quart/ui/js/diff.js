// A small unified-diff parser (git style, and plain `---`/`+++` diffs).
//
// parseDiff(text) → [{ oldPath, newPath, path, status, binary, hunks, additions, deletions }]
//   status: "modified" | "added" | "deleted" | "renamed"
//   hunk:   { header, oldStart, oldLines, newStart, newLines, section, lines }
//   line:   { kind: "context" | "add" | "del", text, oldNo, newNo, noNewline }
//
// Hunk bodies are read by their line counts, so a removed line that happens to start
// with "-- " or "++ " is never mistaken for a file header.

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$/;
const GIT_HEADER = /^diff --git (.+)$/;

function unquote(path) {
  if (path.startsWith('"') && path.endsWith('"')) {
    return path.slice(1, -1).replace(/\\(["\\])/g, "$1").replace(/\\t/g, "\t").replace(/\\n/g, "\n");
  }
  return path;
}

function stripPrefix(path) {
  if (path === "/dev/null") return null;
  const clean = unquote(path.split("\t")[0].trim());
  return clean.replace(/^[ab]\//, "");
}

function gitPaths(rest) {
  // "a/x b/x" — split in the middle when both halves name the same file, else at " b/".
  const quoted = rest.match(/^"(.+?)" "(.+)"$/);
  if (quoted) return [stripPrefix(`"${quoted[1]}"`), stripPrefix(`"${quoted[2]}"`)];
  const half = (rest.length - 1) / 2;
  if (Number.isInteger(half) && rest[half] === " " && rest.slice(2, half) === rest.slice(half + 3)) {
    return [stripPrefix(rest.slice(0, half)), stripPrefix(rest.slice(half + 1))];
  }
  const at = rest.indexOf(" b/");
  if (at > 0) return [stripPrefix(rest.slice(0, at)), stripPrefix(rest.slice(at + 1))];
  return [stripPrefix(rest), stripPrefix(rest)];
}

/**
 * @typedef {{ kind: string, text: string, oldNo: number | null, newNo: number | null, noNewline?: boolean }} DiffLine
 * @typedef {{ header: string, oldStart: number, oldLines: number, newStart: number, newLines: number,
 *   section: string, lines: DiffLine[] }} DiffHunk
 * @typedef {{ oldPath: string | null, newPath: string | null, path: string, status: string,
 *   binary: boolean, hunks: DiffHunk[], additions: number, deletions: number,
 *   _explicit?: { added: boolean, deleted: boolean, renamed: boolean }, _sawOld?: boolean }} DiffFile
 */

/** @returns {DiffFile} */
function newFile() {
  return {
    oldPath: null,
    newPath: null,
    path: "",
    status: "modified",
    binary: false,
    hunks: [],
    additions: 0,
    deletions: 0,
    _explicit: { added: false, deleted: false, renamed: false },
  };
}

function finish(file) {
  if (!file) return null;
  const { added, deleted, renamed } = file._explicit;
  delete file._explicit;
  if (added || (file.oldPath === null && file.newPath !== null)) file.status = "added";
  else if (deleted || (file.newPath === null && file.oldPath !== null)) file.status = "deleted";
  else if (renamed || (file.oldPath && file.newPath && file.oldPath !== file.newPath)) {
    file.status = "renamed";
  }
  file.path = file.newPath ?? file.oldPath ?? "";
  return file;
}

export function parseDiff(text) {
  const files = [];
  const lines = (text || "").replace(/\r\n/g, "\n").split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  // Never null where a line is read into it: a header line starts one first.
  let file = /** @type {DiffFile} */ (/** @type {unknown} */ (null));
  /** @type {DiffHunk | null} */
  let hunk = null;
  let oldLeft = 0;
  let newLeft = 0;
  let oldNo = 0;
  let newNo = 0;

  const start = () => {
    const done = finish(file);
    if (done) files.push(done);
    file = newFile();
    hunk = null;
  };

  for (const line of lines) {
    if (hunk && (oldLeft > 0 || newLeft > 0)) {
      const mark = line[0];
      const body = line.slice(1);
      if (mark === "+") {
        hunk.lines.push({ kind: "add", text: body, oldNo: null, newNo: newNo++ });
        newLeft -= 1;
        file.additions += 1;
        continue;
      }
      if (mark === "-") {
        hunk.lines.push({ kind: "del", text: body, oldNo: oldNo++, newNo: null });
        oldLeft -= 1;
        file.deletions += 1;
        continue;
      }
      if (mark === " " || line === "") {
        hunk.lines.push({ kind: "context", text: body, oldNo: oldNo++, newNo: newNo++ });
        oldLeft -= 1;
        newLeft -= 1;
        continue;
      }
      if (mark === "\\") {
        const last = hunk.lines[hunk.lines.length - 1];
        if (last) last.noNewline = true;
        continue;
      }
      // A malformed hunk (counts too large): fall through and read the line as a header.
      oldLeft = 0;
      newLeft = 0;
    }
    if (line.startsWith("\\") && hunk) {
      const last = hunk.lines[hunk.lines.length - 1];
      if (last) last.noNewline = true;
      continue;
    }
    const git = line.match(GIT_HEADER);
    if (git) {
      start();
      [file.oldPath, file.newPath] = gitPaths(git[1]);
      continue;
    }
    if (line.startsWith("--- ")) {
      if (!file || file.hunks.length > 0 || file._sawOld) start();
      file._sawOld = true;
      file.oldPath = stripPrefix(line.slice(4));
      continue;
    }
    if (line.startsWith("+++ ") && file) {
      file.newPath = stripPrefix(line.slice(4));
      continue;
    }
    const header = line.match(HUNK);
    if (header && file) {
      hunk = {
        header: line,
        oldStart: Number(header[1]),
        oldLines: header[2] === undefined ? 1 : Number(header[2]),
        newStart: Number(header[3]),
        newLines: header[4] === undefined ? 1 : Number(header[4]),
        section: header[5] || "",
        lines: [],
      };
      file.hunks.push(hunk);
      oldLeft = hunk.oldLines;
      newLeft = hunk.newLines;
      oldNo = hunk.oldStart;
      newNo = hunk.newStart;
      continue;
    }
    if (!file) continue; // preamble (a commit message, say)
    if (line.startsWith("new file mode")) file._explicit.added = true;
    else if (line.startsWith("deleted file mode")) file._explicit.deleted = true;
    else if (line.startsWith("rename from ")) {
      file._explicit.renamed = true;
      file.oldPath = unquote(line.slice(12));
    } else if (line.startsWith("rename to ")) file.newPath = unquote(line.slice(10));
    else if (line.startsWith("Binary files ") || line === "GIT binary patch") file.binary = true;
  }
  const done = finish(file);
  if (done) files.push(done);
  for (const f of files) delete f._sawOld;
  return files;
}

/**
 * Side-by-side rows for one hunk: context on both sides; a run of removed lines is
 * paired with the run of added lines that follows it.
 */
export function splitRows(hunk) {
  const rows = [];
  let dels = [];
  let adds = [];
  const flush = () => {
    const n = Math.max(dels.length, adds.length);
    for (let i = 0; i < n; i += 1) rows.push({ left: dels[i] || null, right: adds[i] || null });
    dels = [];
    adds = [];
  };
  for (const line of hunk.lines) {
    if (line.kind === "del") {
      if (adds.length) flush();
      dels.push(line);
    } else if (line.kind === "add") {
      adds.push(line);
    } else {
      flush();
      rows.push({ left: line, right: line });
    }
  }
  flush();
  return rows;
}

export function stats(files) {
  return files.reduce(
    (acc, f) => ({ files: acc.files + 1, additions: acc.additions + f.additions, deletions: acc.deletions + f.deletions }),
    { files: 0, additions: 0, deletions: 0 },
  );
}

// -- changed words -------------------------------------------------------------------
// A changed line is usually a few words changed in place. The words a removed line and
// the added line paired with it (as the side-by-side view pairs them) do not share are
// marked, so the eye goes to them. Lines that share too little are left unmarked:
// everything would be marked, which says nothing the line colour does not.

const WORD = /[\p{L}\p{N}_]+|\s+|[^\p{L}\p{N}_\s]/gu;
const MAX_CELLS = 250_000; // tokens(a) × tokens(b) the LCS table may hold
const MIN_SHARED = 0.3; // of the longer line's non-space characters

/** The line's tokens: runs of word characters, runs of white space, single other characters. */
export function words(text) {
  return text.match(WORD) || [];
}

/**
 * The character ranges that differ between a removed line and the added line paired with
 * it: `{ del: [[start, end], …], add: [[start, end], …] }`, or null when the lines share
 * too little for word marks to help (or are too long to compare quickly).
 */
export function wordDiff(before, after) {
  if (before === after) return { del: [], add: [] };
  const a = words(before);
  const b = words(after);
  if (a.length * b.length > MAX_CELLS) return null;
  // LCS lengths from the end: table[i][j] is the LCS of a[i:] and b[j:].
  const width = b.length + 1;
  const table = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i -= 1) {
    for (let j = b.length - 1; j >= 0; j -= 1) {
      table[i * width + j] = a[i] === b[j]
        ? table[(i + 1) * width + j + 1] + 1
        : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
    }
  }
  const keepA = new Array(a.length).fill(false);
  const keepB = new Array(b.length).fill(false);
  for (let i = 0, j = 0; i < a.length && j < b.length;) {
    if (a[i] === b[j]) {
      keepA[i] = true;
      keepB[j] = true;
      i += 1;
      j += 1;
    } else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) i += 1;
    else j += 1;
  }
  const shared = a.reduce((n, token, i) => n + (keepA[i] && /\S/u.test(token) ? token.length : 0), 0);
  const longest = Math.max(before.replace(/\s/gu, "").length, after.replace(/\s/gu, "").length);
  if (longest > 0 && shared / longest < MIN_SHARED) return null;
  return { del: ranges(a, keepA), add: ranges(b, keepB) };
}

function ranges(tokens, kept) {
  const out = [];
  let at = 0;
  tokens.forEach((token, i) => {
    const end = at + token.length;
    if (!kept[i]) {
      const last = out[out.length - 1];
      if (last && last[1] === at) last[1] = end;
      else out.push([at, end]);
    }
    at = end;
  });
  return out;
}

/**
 * Word marks for a hunk: a Map from each removed or added line that has a partner to its
 * ranges. Partners are paired as in `splitRows`: a run of removed lines with the run of
 * added lines right after it, first with first.
 */
export function changedWords(hunk) {
  const marks = new Map();
  for (const row of splitRows(hunk)) {
    const { left, right } = row;
    if (!left || !right || left.kind !== "del" || right.kind !== "add") continue;
    const found = wordDiff(left.text, right.text);
    if (!found) continue;
    if (found.del.length) marks.set(left, found.del);
    if (found.add.length) marks.set(right, found.add);
  }
  return marks;
}
