// The whole extension against the stand-in VS Code API: commands, status bar, first-run
// key import, the dashboard panel and the key's path into it, and deactivation.
// Python and the watchdog are fakes; the status file and the logs are real files.

import * as assert from "node:assert/strict";
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe as group, test } from "node:test";

import type * as vscode from "vscode";

import { activate, deactivate } from "../../src/extension";
import type { Runner } from "../../src/python";
import type { ProcessApi } from "../../src/server";
import { watchdogPaths } from "../../src/status";
import { FakeSecrets, stub, Uri } from "../stub/vscode";
import { tempDir, waitFor, writeStatus } from "./helpers";

const GENERATED = "sk-generated-5f1e2d3c4b5a6978";
const TYPED = "sk-typed-0a1b2c3d4e5f6a7b";

class FakeChild extends EventEmitter {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  // The status file's watchdog_pid must be a live process for the extension to believe
  // it; this test process is one, and the fake never signals it for real.
  readonly pid = process.pid;
}

class FakeProcesses implements ProcessApi {
  readonly spawned: { command: string; args: string[]; options: SpawnOptions }[] = [];
  readonly kills: [number, NodeJS.Signals | 0][] = [];
  child: FakeChild | undefined;
  spawn(command: string, args: string[], options: SpawnOptions): ChildProcess {
    this.spawned.push({ command, args, options });
    this.child = new FakeChild();
    return this.child as unknown as ChildProcess;
  }
  kill(pid: number, signal: NodeJS.Signals | 0): void {
    this.kills.push([pid, signal]);
  }
  alive(): boolean {
    return true;
  }
}

interface World {
  dataDir: string;
  processes: FakeProcesses;
  secrets: FakeSecrets;
  probeResult: Awaited<ReturnType<Runner>>;
}

let world: World;

function start(): World {
  stub.reset();
  const dataDir = tempDir();
  stub.workspaceFolder = tempDir();
  stub.config["storykit.pythonPath"] = "/venv/bin/python";
  stub.config["storykit.dataDir"] = dataDir;
  stub.config["storykit.port"] = 0;
  world = {
    dataDir,
    processes: new FakeProcesses(),
    secrets: new FakeSecrets(),
    probeResult: { code: 0, stdout: JSON.stringify({ dataDir, version: "0.1.0" }), stderr: "" },
  };
  const context = { secrets: world.secrets, extensionUri: Uri.file("/ext"), subscriptions: [] };
  activate(context as unknown as vscode.ExtensionContext, {
    processes: world.processes,
    runPython: () => Promise.resolve(world.probeResult),
    stopTimeoutMs: 500,
  });
  return world;
}

const item = () => stub.items[0]!;
const run = (command: string) => stub.commands.get(command)!();
const serverLog = (line: string) => fs.appendFileSync(watchdogPaths(world.dataDir).serverLog, `${line}\n`);

/** What the watchdog does when the stop-file appears; returns a cancel function. */
function obeyStopFile(): () => void {
  const timer = setInterval(() => {
    if (!fs.existsSync(watchdogPaths(world.dataDir).stop)) return;
    clearInterval(timer);
    writeStatus(world.dataDir, { state: "stopped", watchdog_pid: process.pid, pid: null });
    world.processes.child?.emit("exit", 0, null);
  }, 10);
  return () => clearInterval(timer);
}

/** Start the server through the command and play the watchdog's part up to "running". */
async function startRunning(): Promise<number> {
  await waitFor(() => item().text.includes("stopped"), 3000, "the status bar");
  await run("storykit.start");
  const spawned = world.processes.spawned[0];
  assert.ok(spawned, "the watchdog was not started");
  const port = Number(spawned.args[spawned.args.indexOf("--port") + 1]);
  writeStatus(world.dataDir, { state: "starting", watchdog_pid: process.pid, url: null, port: null });
  await waitFor(() => item().text === "$(sync~spin) storykit: starting", 3000, "starting");
  // The server generates a key, keeps it in DATA_DIR/api-key, then prints it.
  fs.writeFileSync(path.join(world.dataDir, "api-key"), `${GENERATED}\n`);
  serverLog(`API_TOKENS is not set: generated an admin key (kept in ${world.dataDir}/api-key):`);
  serverLog("");
  serverLog(`    ${GENERATED}`);
  writeStatus(world.dataDir, { state: "running", watchdog_pid: process.pid, pid: 999_999, port, url: `http://127.0.0.1:${port}` });
  await waitFor(() => item().text === "$(check) storykit: running", 3000, "running");
  return port;
}

group("the extension", () => {
  beforeEach(() => start());
  afterEach(async () => {
    const cancel = obeyStopFile();
    await deactivate();
    cancel();
  });

  test("registers its commands and a status bar item that opens the dashboard", async () => {
    assert.deepEqual([...stub.commands.keys()].sort(), [
      "storykit.openDashboard",
      "storykit.setApiKey",
      "storykit.showLogs",
      "storykit.start",
      "storykit.stop",
    ]);
    assert.equal(item().command, "storykit.openDashboard");
    assert.equal(item().visible, true);
    await waitFor(() => item().text === "$(circle-slash) storykit: stopped", 3000, "stopped");
  });

  test("first run: starts the watchdog, takes the generated key, never shows it", async () => {
    const port = await startRunning();
    const [spawned] = world.processes.spawned;
    assert.equal(spawned?.command, "/venv/bin/python");
    assert.deepEqual(spawned?.args.slice(0, 9), ["-m", "storykit_watchdog", "--data-dir", world.dataDir, "--parent-pid", String(process.pid), "--kill-timeout", "3", "--"]);
    assert.ok(port > 0, "port 0 means a free port is chosen before the start");
    assert.equal(spawned?.options.detached, true);
    assert.equal(spawned?.options.cwd, stub.workspaceFolder);
    assert.equal((spawned?.options.env as NodeJS.ProcessEnv)["CORS_ORIGINS"], "vscode-webview://*");

    await waitFor(() => world.secrets.values.get("storykit.apiKey") === GENERATED, 3000, "the key import");
    await waitFor(() => stub.messages.some((m) => m.text.includes("using the admin key the server generated")), 3000, "the notice");
    await waitFor(() => stub.logText().includes("[server]     [redacted]"), 3000, "the server's log");
    assert.doesNotMatch(stub.logText(), new RegExp(GENERATED));
    assert.deepEqual(stub.configUpdates, [], "nothing is written to settings");
  });

  test("the dashboard gets the key by message only, and a new key when it is set", async () => {
    const port = await startRunning();
    await waitFor(() => world.secrets.values.get("storykit.apiKey"), 3000, "the key import");
    await run("storykit.openDashboard");
    const panel = stub.panels[0];
    assert.ok(panel, "no panel");
    const options = panel.options as { enableScripts: boolean; localResourceRoots: Uri[]; portMapping: unknown };
    assert.equal(options.enableScripts, true);
    assert.deepEqual(options.localResourceRoots.map((u) => u.path), ["/ext/dist/webview"]);
    assert.deepEqual(options.portMapping, [{ webviewPort: port, extensionHostPort: port }]);
    const html = panel.webview.html;
    assert.match(html, new RegExp(`frame-src http://127\\.0\\.0\\.1:${port};`));
    assert.match(html, new RegExp(`data-src="http://127\\.0\\.0\\.1:${port}/story/ui"`));
    assert.doesNotMatch(html, new RegExp(GENERATED));
    assert.deepEqual(panel.webview.posted, [], "the key waits until the dashboard is ready");

    panel.webview.received.fire({ type: "ready", version: "0.1.0" });
    await waitFor(() => panel.webview.posted.length === 1, 3000, "the key message");
    assert.deepEqual(panel.webview.posted[0], { type: "key", key: GENERATED, apiBase: `http://127.0.0.1:${port}` });

    stub.inputBoxAnswers.push(TYPED);
    await run("storykit.setApiKey");
    assert.equal(stub.inputBoxes[0]?.["password"], true);
    assert.equal(world.secrets.values.get("storykit.apiKey"), TYPED);
    await waitFor(() => panel.webview.posted.length === 2, 3000, "the new key");
    assert.deepEqual(panel.webview.posted[1], { type: "key", key: TYPED, apiBase: `http://127.0.0.1:${port}` });

    // The dashboard's own messages, even with a key in them, are logged masked.
    panel.webview.received.fire({ type: "state", state: "live", detail: `using ${TYPED}` });
    await waitFor(() => stub.logText().includes("dashboard: live"), 3000, "the state line");
    const log = stub.logText();
    assert.doesNotMatch(log, new RegExp(GENERATED));
    assert.doesNotMatch(log, new RegExp(TYPED));
    assert.deepEqual(stub.configUpdates, []);
  });

  test("code-server: the dashboard goes through the address asExternalUri gives", async () => {
    stub.externalUri = (uri) => Uri.parse(`https://ide.example.com/proxy/${new URL(uri.toString()).port}/`);
    const port = await startRunning();
    const env = world.processes.spawned[0]?.options.env as NodeJS.ProcessEnv;
    assert.equal(env["CORS_ORIGINS"], "vscode-webview://*,https://ide.example.com");
    await waitFor(() => world.secrets.values.get("storykit.apiKey"), 3000, "the key import");
    await run("storykit.openDashboard");
    const panel = stub.panels[0]!;
    assert.match(panel.webview.html, /frame-src https:\/\/ide\.example\.com;/);
    assert.match(panel.webview.html, new RegExp(`data-src="https://ide\\.example\\.com/proxy/${port}/story/ui"`));
    panel.webview.received.fire({ type: "ready", version: "" });
    await waitFor(() => panel.webview.posted.length === 1, 3000, "the key message");
    assert.deepEqual(panel.webview.posted[0], { type: "key", key: GENERATED, apiBase: `https://ide.example.com/proxy/${port}` });
  });

  test("stop: the stop-file, and the status bar follows", async () => {
    await startRunning();
    const cancel = obeyStopFile();
    try {
      await run("storykit.stop");
    } finally {
      cancel();
    }
    await waitFor(() => item().text === "$(circle-slash) storykit: stopped", 3000, "stopped");
    assert.deepEqual(world.processes.kills, []);
  });

  test("deactivation stops the watchdog; one that hangs is killed", async () => {
    await startRunning();
    const started = Date.now();
    await deactivate(); // nobody obeys the stop-file
    assert.ok(Date.now() - started < 3000);
    assert.deepEqual(world.processes.kills, [
      [-process.pid, "SIGKILL"],
      [-999_999, "SIGKILL"],
    ]);
    start(); // afterEach deactivates again
  });

  test("storykit missing from the interpreter: an error with the install command", async () => {
    world.probeResult = { code: 3, stdout: '{"missing": "storykit_watchdog"}', stderr: "" };
    stub.answer = (_text, actions) => (actions.includes("Copy install command") ? "Copy install command" : undefined);
    await run("storykit.start");
    const error = stub.messages.find((m) => m.level === "error");
    assert.equal(error?.text, "storykit is not installed for /venv/bin/python. Install it with: /venv/bin/python -m pip install storykit");
    assert.equal(stub.clipboard, "/venv/bin/python -m pip install storykit");
    assert.deepEqual(world.processes.spawned, []);
  });

  test("a refused key offers to set another", async () => {
    await startRunning();
    await waitFor(() => world.secrets.values.get("storykit.apiKey"), 3000, "the key import");
    await run("storykit.openDashboard");
    stub.answer = (text) => (text.includes("refused") ? "Set API key" : undefined);
    stub.inputBoxAnswers.push(TYPED);
    stub.panels[0]!.webview.received.fire({ type: "auth-failed", detail: "unknown API key" });
    await waitFor(() => world.secrets.values.get("storykit.apiKey") === TYPED, 3000, "the new key");
  });
});
