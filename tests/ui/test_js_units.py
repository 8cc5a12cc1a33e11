"""The dashboard's JS modules, run in Chromium: the unified-diff parser and the live
connection's bookkeeping (gaps, duplicates, resume counts) with a fake EventSource."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


GIT_DIFF = """diff --git a/app.py b/app.py
index 1..2 100644
--- a/app.py
+++ b/app.py
@@ -1,4 +1,3 @@ def top():
-import os
 import sys
--- not a header
+++ also not a header
@@ -10 +9,2 @@
-    return  x
+    return x
+    # done
\\ No newline at end of file
diff --git a/new file.txt b/new file.txt
new file mode 100644
--- /dev/null
+++ b/new file.txt
@@ -0,0 +1 @@
+hello
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/a.md b/docs/a.md
similarity index 100%
rename from a.md
rename to docs/a.md
diff --git a/logo.png b/logo.png
Binary files a/logo.png and b/logo.png differ
"""


def test_parse_git_diff(js) -> None:
    files = js(
        "diff.js",
        """return m.parseDiff(arg).map(f => ({
            path: f.path, old: f.oldPath, status: f.status, binary: f.binary,
            adds: f.additions, dels: f.deletions,
            hunks: f.hunks.map(h => ({start: [h.oldStart, h.oldLines, h.newStart, h.newLines],
              section: h.section,
              lines: h.lines.map(l => [l.kind, l.oldNo, l.newNo, l.text, !!l.noNewline])}))}))""",
        GIT_DIFF,
    )
    assert [(f["path"], f["status"]) for f in files] == [
        ("app.py", "modified"),
        ("new file.txt", "added"),
        ("old.txt", "deleted"),
        ("docs/a.md", "renamed"),
        ("logo.png", "modified"),
    ]
    app = files[0]
    assert (app["adds"], app["dels"]) == (3, 3)
    assert app["hunks"][0]["start"] == [1, 4, 1, 3]
    assert app["hunks"][0]["section"] == "def top():"
    # Lines that look like file headers inside a hunk are content, read by the counts.
    assert app["hunks"][0]["lines"] == [
        ["del", 1, None, "import os", False],
        ["context", 2, 1, "import sys", False],
        ["del", 3, None, "-- not a header", False],
        ["add", None, 2, "++ also not a header", False],
    ]
    assert app["hunks"][1]["start"] == [10, 1, 9, 2]
    assert app["hunks"][1]["lines"][-1] == ["add", None, 10, "    # done", True]
    assert files[2]["old"] == "old.txt"
    assert files[3]["old"] == "a.md"
    assert files[4]["binary"] is True


def test_parse_plain_unified_diff_and_split_rows(js) -> None:
    result = js(
        "diff.js",
        """const files = m.parseDiff(arg);
        return {paths: files.map(f => f.path),
                rows: m.splitRows(files[0].hunks[0])
                  .map(r => [r.left && r.left.text, r.right && r.right.text]),
                stats: m.stats(files)}""",
        "--- a.txt\t2024-01-01\n+++ a.txt\t2024-01-02\n@@ -1,4 +1,4 @@\n same\n-one\n-two\n+uno\n"
        "+dos\n+tres\n-gone\n--- b.txt\n+++ b.txt\n@@ -1 +1 @@\n-c\n+d\n",
    )
    assert result["paths"] == ["a.txt", "b.txt"]
    assert result["rows"] == [
        ["same", "same"],
        ["one", "uno"],
        ["two", "dos"],
        [None, "tres"],
        ["gone", None],
    ]
    assert result["stats"] == {"files": 2, "additions": 4, "deletions": 4}


FAKE_SETUP = """
class FakeSource {
  constructor(url) {
    this.url = url;
    FakeSource.all.push(this);
    const position = { data: JSON.stringify({ head: FakeSource.head, epoch: FakeSource.epoch }) };
    setTimeout(() => {
      if (this.onopen) this.onopen();
      this.onready(position);  // what the server sends first
      if (FakeSource.resets) this.onreset(position);
    }, 0);
  }
  addEventListener(type, fn) { this["on" + type] = fn; }
  close() { this.closed = true; }
  send(event) { this.onmessage({ data: JSON.stringify(event) }); }
  gap(first_id, last_id) {
    const count = last_id - first_id + 1;
    this.ongap({ data: JSON.stringify({ first_id, last_id, count }) });
  }
}
FakeSource.all = [];
FakeSource.head = 12;
FakeSource.epoch = "e1";
FakeSource.resets = false;
window.EventSource = FakeSource;
const log = Array.from({ length: 12 },
  (_, i) => ({ id: i + 1, type: "suggest.submitted", at: "", data: {} }));
const calls = [];
const api = {
  url: (path, query) =>
    path + "?" + new URLSearchParams(Object.entries(query).filter(([, v]) => v !== null)),
  ticket: async () => ({ ticket: "tk_" + FakeSource.all.length }),
  eventLog: async (after, limit) => {
    calls.push(after);
    const items = log.filter(e => e.id > after).slice(0, limit);
    return { items, last_id: items.length ? items[items.length - 1].id : after };
  },
};
const live = new m.Live(api);
const seen = [];
const states = [];
live.addEventListener("event", e => seen.push([e.detail.event.id, e.detail.replayed]));
live.addEventListener("state", e => states.push(e.detail.detail));
const tick = () => new Promise(r => setTimeout(r, 0));
"""
START = """
live.start();
while (live.state !== "live") await tick();
"""
FAKE_LIVE = FAKE_SETUP + START


def test_live_recovers_a_gap_from_the_log_once(js) -> None:
    result = js(
        "live.js",
        FAKE_LIVE
        + """
        const source = FakeSource.all[0];
        source.send(log[0]); source.send(log[1]);
        source.gap(3, 6);              // the server dropped 3..6 for this connection
        source.send(log[6]);           // 7 arrives live before the log read ends
        while (seen.length < 7) await tick();
        source.send(log[4]);           // a duplicate is ignored
        await tick();
        return { seen, calls, last: live.lastEventId };
        """,
    )
    assert sorted(i for i, _ in result["seen"]) == [1, 2, 3, 4, 5, 6, 7]
    assert len(result["seen"]) == 7
    assert {i for i, replayed in result["seen"] if replayed} == {3, 4, 5, 6}
    assert result["calls"] == [2]
    assert result["last"] == 7


def test_live_resumes_with_a_new_ticket_and_counts_missed_events(js) -> None:
    result = js(
        "live.js",
        FAKE_LIVE
        + """
        let resync = null;
        live.addEventListener("resync", e => (resync = e.detail));
        const first = FakeSource.all[0];
        for (const e of log.slice(0, 5)) first.send(e);
        first.onerror();                                   // the stream breaks
        while (FakeSource.all.length < 2) await tick();
        const second = FakeSource.all[1];
        second.send(log[5]); second.send(log[6]);          // the server's replay after 5
        while (live.state !== "resumed") await tick();
        live.stop();
        return { urls: FakeSource.all.map(s => s.url), closed: first.closed, resync, states,
                 seen: seen.map(([id]) => id) };
        """,
    )
    assert result["urls"][0] == "/events?ticket=tk_0"
    assert result["urls"][1] == "/events?ticket=tk_1&last_event_id=5&epoch=e1"
    assert result["closed"] is True
    assert result["seen"] == list(range(1, 13))
    assert result["resync"] == {"missed": 7, "from": 5, "head": 12}
    assert "Reconnecting… (attempt 1)" in result["states"]
    assert "Resumed · caught up 7 missed events" in result["states"]


def test_live_starts_from_a_snapshot_loaded_before_it_connected(js) -> None:
    result = js(
        "live.js",
        FAKE_SETUP
        + """
        live.loaded(7);
        live.loaded(4);                // the oldest snapshot wins
        """
        + START
        + """
        live.loaded(12);               // one read after the stream started: nothing to do
        await tick();
        return { urls: FakeSource.all.map(s => s.url), calls };
        """,
    )
    assert result["urls"] == ["/events?ticket=tk_0&last_event_id=4"]
    assert result["calls"] == []


def test_live_reads_the_log_for_a_snapshot_older_than_the_stream(js) -> None:
    result = js(
        "live.js",
        FAKE_LIVE
        + """
        // The stream started live at head 12; a list read before it answers with head 9.
        live.loaded(9);
        while (seen.length < 3) await tick();
        FakeSource.all[0].send(log[11]);   // 12 again, from the stream: a duplicate
        await tick();
        return { urls: FakeSource.all.map(s => s.url), calls, seen };
        """,
    )
    assert result["urls"] == ["/events?ticket=tk_0"]
    assert result["calls"] == [9]
    assert result["seen"] == [[10, True], [11, True], [12, True]]


def test_live_reset_starts_over_from_the_servers_head(js) -> None:
    result = js(
        "live.js",
        FAKE_LIVE
        + """
        let resync = null;
        live.addEventListener("resync", e => (resync = e.detail));
        const first = FakeSource.all[0];
        for (const e of log.slice(0, 5)) first.send(e);
        FakeSource.head = 2;              // the server came back with another database
        FakeSource.epoch = "e2";
        FakeSource.resets = true;
        first.onerror();
        while (live.state !== "resumed") await tick();
        FakeSource.resets = false;
        const second = FakeSource.all[1];
        second.send({ id: 3, type: "suggest.submitted", at: "", data: {} });  // a new id 3
        second.onerror();
        while (FakeSource.all.length < 3) await tick();
        live.stop();
        return { urls: FakeSource.all.map(s => s.url), resync, states, calls,
                 last: live.lastEventId, epoch: live.epoch, seen: seen.map(([id]) => id) };
        """,
    )
    assert result["urls"][1] == "/events?ticket=tk_1&last_event_id=5&epoch=e1"
    assert result["resync"] == {"missed": None, "from": None, "head": None}
    assert "Resumed · the server's event log changed; reloaded" in result["states"]
    assert result["calls"] == []  # nothing read from the other log as if missed
    assert result["seen"] == [1, 2, 3, 4, 5, 3]  # id 3 of the new log is news
    assert (result["last"], result["epoch"]) == (3, "e2")
    assert result["urls"][2] == "/events?ticket=tk_2&last_event_id=3&epoch=e2"
