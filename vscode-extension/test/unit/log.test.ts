import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe as group, test } from "node:test";

import { formatWatchdogLine, LineSplitter, Log, type LogSink, LogTail } from "../../src/log";
import { tempDir, waitFor } from "./helpers";

class Sink implements LogSink {
  readonly lines: string[] = [];
  info(message: string) {
    this.lines.push(message);
  }
  warn(message: string) {
    this.lines.push(message);
  }
  error(message: string) {
    this.lines.push(message);
  }
  show() {}
}

group("Log", () => {
  test("masks every known secret, wherever it appears", () => {
    const sink = new Sink();
    const log = new Log(sink);
    log.addSecret("sk-0123456789abcdef");
    log.addSecret("short"); // too short to be a key: would mangle ordinary words
    log.info("generated an admin key:\n\n    sk-0123456789abcdef\n");
    log.warn("twice sk-0123456789abcdefsk-0123456789abcdef, short stays");
    log.error("nothing secret");
    assert.deepEqual(sink.lines, [
      "generated an admin key:\n\n    [redacted]\n",
      "twice [redacted][redacted], short stays",
      "nothing secret",
    ]);
  });
});

group("formatWatchdogLine", () => {
  test("makes the watchdog's JSON events readable", () => {
    const line = JSON.stringify({ at: "2025-01-01T10:00:00.000Z", level: "info", logger: "storykit_watchdog", event: "child.started", pid: 42, command: ["a", "b"] });
    assert.equal(formatWatchdogLine(line), 'child.started pid=42 command=["a","b"]');
  });
  test("leaves other text alone", () => {
    assert.equal(formatWatchdogLine("storykit-watchdog: already running"), "storykit-watchdog: already running");
    assert.equal(formatWatchdogLine("[1]"), "[1]");
  });
});

group("LineSplitter", () => {
  test("joins lines split across chunks", () => {
    const splitter = new LineSplitter();
    assert.deepEqual(splitter.push("a\r\nb"), ["a"]);
    assert.deepEqual(splitter.push("c\n\nd"), ["bc", ""]);
    assert.deepEqual(splitter.flush(), ["d"]);
    assert.deepEqual(splitter.flush(), []);
  });
});

group("LogTail", () => {
  test("follows appends from the end, and a rotated file from its start", async () => {
    const dir = tempDir();
    const file = path.join(dir, "server.log");
    fs.writeFileSync(file, "from an earlier run\n");
    const lines: string[] = [];
    const tail = new LogTail(file, { pollMs: 20, onLine: (line) => lines.push(line) });
    try {
      fs.appendFileSync(file, "one\ntw");
      await waitFor(() => lines.includes("one"), 3000, "one");
      fs.appendFileSync(file, "o\n");
      await waitFor(() => lines.includes("two"), 3000, "two");
      fs.renameSync(file, `${file}.1`);
      fs.writeFileSync(file, "three\n");
      await waitFor(() => lines.includes("three"), 3000, "three");
      assert.deepEqual(lines, ["one", "two", "three"]);
    } finally {
      tail.dispose();
    }
  });

  test("a file that appears later is read from its start", async () => {
    const file = path.join(tempDir(), "server.log");
    const lines: string[] = [];
    const tail = new LogTail(file, { pollMs: 20, onLine: (line) => lines.push(line) });
    try {
      fs.writeFileSync(file, "first\n");
      await waitFor(() => lines.includes("first"), 3000, "first");
    } finally {
      tail.dispose();
    }
  });
});
