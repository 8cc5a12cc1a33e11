import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe as group, test } from "node:test";

import { describe, effectiveState, parseStatus, StatusWatcher, type WatchdogStatus } from "../../src/status";
import { tempDir, waitFor, writeStatus } from "./helpers";

const SAMPLE = {
  state: "running",
  watchdog_pid: 4240,
  pid: 4242,
  port: 8001,
  url: "http://127.0.0.1:8001",
  restarts: 1,
  last_exit: { code: 1, signal: null, reason: "crashed", at: "2025-01-01T10:00:00.000Z" },
  next_retry_at: null,
  updated_at: "2025-01-01T10:00:02.000Z",
  command: ["storykit", "serve", "--port", "8001"],
};

group("parseStatus", () => {
  test("reads the documented keys", () => {
    assert.deepEqual(parseStatus(JSON.stringify(SAMPLE)), {
      state: "running",
      watchdogPid: 4240,
      pid: 4242,
      port: 8001,
      url: "http://127.0.0.1:8001",
      restarts: 1,
      lastExit: { code: 1, signal: null, reason: "crashed", at: "2025-01-01T10:00:00.000Z" },
      nextRetryAt: null,
      updatedAt: "2025-01-01T10:00:02.000Z",
      command: ["storykit", "serve", "--port", "8001"],
    });
  });

  test("nulls for a server that has not started", () => {
    const status = parseStatus(JSON.stringify({ ...SAMPLE, state: "starting", pid: null, port: null, url: null, last_exit: null }));
    assert.equal(status?.state, "starting");
    assert.equal(status?.port, null);
    assert.equal(status?.lastExit, null);
  });

  for (const [name, text] of [
    ["empty", ""],
    ["half written", JSON.stringify(SAMPLE).slice(0, 40)],
    ["not an object", "[1, 2]"],
    ["unknown state", JSON.stringify({ ...SAMPLE, state: "dancing" })],
    ["no state", JSON.stringify({ ...SAMPLE, state: undefined })],
  ] as const) {
    test(`rejects ${name}`, () => assert.equal(parseStatus(text), undefined));
  }

  test("ignores wrongly typed fields instead of trusting them", () => {
    const status = parseStatus(JSON.stringify({ ...SAMPLE, port: "8001", restarts: -0.5, command: ["a", 1] }));
    assert.equal(status?.port, null);
    assert.equal(status?.restarts, 0);
    assert.deepEqual(status?.command, ["a"]);
  });
});

group("effectiveState", () => {
  const status = parseStatus(JSON.stringify(SAMPLE)) as WatchdogStatus;

  test("believes a live watchdog", () => assert.equal(effectiveState(status, () => true), "running"));
  test("a dead watchdog's running status is stale", () => assert.equal(effectiveState(status, () => false), "stopped"));
  test("no status is stopped", () => assert.equal(effectiveState(undefined), "stopped"));
  test("failed stays failed after the watchdog exits", () =>
    assert.equal(effectiveState({ ...status, state: "failed" }, () => false), "failed"));
});

group("describe", () => {
  const base = parseStatus(JSON.stringify(SAMPLE)) as WatchdogStatus;

  test("running", () => {
    const view = describe(base, "running");
    assert.equal(view.text, "$(check) storykit: running");
    assert.match(view.tooltip, /at http:\/\/127\.0\.0\.1:8001/);
    assert.match(view.tooltip, /restarts: 1/);
    assert.equal(view.background, undefined);
  });

  test("backing off says when the next start is due", () => {
    const now = new Date("2025-01-01T10:00:00.000Z");
    const view = describe({ ...base, state: "backoff", nextRetryAt: "2025-01-01T10:00:04.000Z" }, "backoff", now);
    assert.equal(view.text, "$(warning) storykit: backing off");
    assert.match(view.tooltip, /next start in 4 s/);
    assert.match(view.tooltip, /last exit: crashed \(code 1\)/);
    assert.equal(view.background, "statusBarItem.warningBackground");
  });

  test("each state has its words", () => {
    assert.equal(describe(undefined, "stopped").text, "$(circle-slash) storykit: stopped");
    assert.equal(describe(base, "starting").text, "$(sync~spin) storykit: starting");
    assert.equal(describe(base, "stopping").text, "$(sync~spin) storykit: stopping");
    assert.equal(describe(base, "failed").background, "statusBarItem.errorBackground");
  });

  test("a stale status says so", () => {
    assert.match(describe(base, "stopped").tooltip, /the watchdog that wrote the status is gone/);
  });
});

group("StatusWatcher", () => {
  test("sees every state the watchdog writes, including before the folder exists", async () => {
    const dataDir = tempDir();
    const seen: (string | undefined)[] = [];
    const watcher = new StatusWatcher(dataDir, { pollMs: 50, onChange: (status) => seen.push(status?.state) });
    try {
      assert.equal(seen.length, 1, "the first read reports no status");
      assert.equal(seen[0], undefined);
      writeStatus(dataDir, { state: "starting" });
      await waitFor(() => seen.includes("starting"), 3000, "starting");
      writeStatus(dataDir, { state: "running" });
      await waitFor(() => seen.includes("running"), 3000, "running");
      assert.equal(watcher.status?.state, "running");
    } finally {
      watcher.dispose();
    }
  });

  test("keeps the last good status over a garbled file", () => {
    const dataDir = tempDir();
    writeStatus(dataDir, { state: "running" });
    const watcher = new StatusWatcher(dataDir, { pollMs: 10_000, onChange: () => undefined });
    try {
      fs.writeFileSync(path.join(dataDir, "watchdog", "status.json"), "{\"state\": ");
      assert.equal(watcher.refresh()?.state, "running");
    } finally {
      watcher.dispose();
    }
  });
});

group("StatusWatcher and a dead watchdog", () => {
  test("a watchdog that dies without a word is noticed by the poll", async () => {
    const dataDir = tempDir();
    writeStatus(dataDir, { state: "running", watchdog_pid: 4242 });
    let alive = true;
    const states: string[] = [];
    const watcher = new StatusWatcher(dataDir, {
      pollMs: 20,
      alive: () => alive,
      onChange: (status) => states.push(effectiveState(status, () => alive)),
    });
    try {
      assert.deepEqual(states, ["running"]);
      alive = false; // killed with SIGKILL: the file still says running
      await waitFor(() => states.includes("stopped"), 3000, "stopped");
    } finally {
      watcher.dispose();
    }
  });
});
