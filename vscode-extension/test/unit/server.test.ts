import * as assert from "node:assert/strict";
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { describe as group, test } from "node:test";

import { corsOrigins, freePort, portFree, type ProcessApi, realProcesses, watchdogLaunch, WatchdogRunner } from "../../src/server";
import { pidAlive, watchdogPaths } from "../../src/status";
import { tempDir, waitFor, writeStatus } from "./helpers";

/** Alive and not a zombie (an orphan's parent may be slow to reap it in a container). */
function running(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

const launchOptions = (dataDir: string) => ({
  python: "/venv/bin/python",
  dataDir,
  port: 8123,
  serverArgs: ["--worker", "trio"],
  corsOrigins: ["http://127.0.0.1:9000"],
  parentPid: 4321,
  cwd: "/work/repo",
  env: { PATH: "/usr/bin", CORS_ORIGINS: "https://review.example.com" },
});

group("watchdogLaunch", () => {
  test("runs the watchdog with the server's command after --", () => {
    const launch = watchdogLaunch(launchOptions("/data"));
    assert.equal(launch.command, "/venv/bin/python");
    assert.deepEqual(launch.args, [
      "-m", "storykit_watchdog",
      "--data-dir", "/data",
      "--parent-pid", "4321",
      "--kill-timeout", "3",
      "--",
      "/venv/bin/python", "-m", "storykit_cli", "serve",
      "--host", "127.0.0.1", "--port", "8123", "--data-dir", "/data",
      "--worker", "trio",
    ]);
    assert.equal(launch.cwd, "/work/repo");
  });

  test("the environment allows the webviews and keeps what was there", () => {
    const { env } = watchdogLaunch(launchOptions("/data"));
    assert.equal(env["CORS_ORIGINS"], "https://review.example.com,vscode-webview://*,http://127.0.0.1:9000");
    assert.equal(env["STORYKIT_DATA_DIR"], "/data");
    assert.equal(env["PATH"], "/usr/bin");
  });

  test("CORS origins are not repeated", () => {
    assert.equal(corsOrigins("vscode-webview://*, a", ["a", "b"]), "vscode-webview://*,a,b");
    assert.equal(corsOrigins(undefined, []), "vscode-webview://*");
  });
});

/** A child process that does what the test tells it to. */
class FakeChild extends EventEmitter {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  exitCode: number | null = null;
  constructor(readonly pid: number) {
    super();
  }
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    this.exitCode = code;
    this.emit("exit", code, signal);
  }
}

class FakeProcesses implements ProcessApi {
  readonly spawned: { command: string; args: string[]; options: SpawnOptions }[] = [];
  readonly kills: [number, NodeJS.Signals | 0][] = [];
  readonly live = new Set<number>();
  child: FakeChild | undefined;

  spawn(command: string, args: string[], options: SpawnOptions): ChildProcess {
    this.spawned.push({ command, args, options });
    this.child = new FakeChild(5000);
    this.live.add(5000);
    return this.child as unknown as ChildProcess;
  }
  kill(pid: number, signal: NodeJS.Signals | 0): void {
    this.kills.push([pid, signal]);
    this.live.delete(Math.abs(pid));
    if (Math.abs(pid) === this.child?.pid) queueMicrotask(() => this.child?.exit(null, "SIGKILL"));
  }
  alive(pid: number): boolean {
    return this.live.has(pid);
  }
}

function makeRunner() {
  const processes = new FakeProcesses();
  const output: string[] = [];
  const exits: (number | null)[] = [];
  const runner = new WatchdogRunner(
    { onOutput: (line, stream) => output.push(`${stream}: ${line}`), onExit: (code) => exits.push(code) },
    processes,
  );
  return { processes, output, exits, runner };
}

group("WatchdogRunner", () => {
  test("spawns the watchdog in its own process group, output piped", () => {
    const { processes, runner } = makeRunner();
    const dataDir = tempDir();
    fs.mkdirSync(path.join(dataDir, "watchdog"));
    fs.writeFileSync(watchdogPaths(dataDir).stop, ""); // left by an earlier run
    assert.equal(runner.start(launchOptions(dataDir)), 5000);
    const [spawned] = processes.spawned;
    assert.equal(spawned?.options.detached, true);
    assert.deepEqual(spawned?.options.stdio, ["ignore", "pipe", "pipe"]);
    assert.equal(spawned?.args.includes("--parent-pid"), true);
    assert.equal(fs.existsSync(watchdogPaths(dataDir).stop), false, "a stale stop-file would stop it at once");
    assert.equal(runner.pid, 5000);
    assert.throws(() => runner.start(launchOptions(dataDir)), /already running/);
  });

  test("passes on whole lines of output, split across chunks", async () => {
    const { processes, output, runner } = makeRunner();
    runner.start(launchOptions(tempDir()));
    processes.child?.stderr.write('{"event": "watchdog.st');
    processes.child?.stderr.write('arted"}\nsecond line\n');
    processes.child?.stdout.end("no newline at the end");
    await waitFor(() => output.length === 3, 2000, "three lines");
    assert.deepEqual(
      output.sort(),
      ['stderr: {"event": "watchdog.started"}', "stderr: second line", "stdout: no newline at the end"].sort(),
    );
  });

  test("stop: the stop-file, then the watchdog reports stopped and exits", async () => {
    const { processes, exits, runner } = makeRunner();
    const dataDir = tempDir();
    runner.start(launchOptions(dataDir));
    writeStatus(dataDir, { state: "running", watchdog_pid: 5000, pid: 5001 });
    processes.live.add(5001);
    const paths = watchdogPaths(dataDir);
    // The fake watchdog obeys the stop-file as the real one does.
    const obey = setInterval(() => {
      if (fs.existsSync(paths.stop)) {
        clearInterval(obey);
        processes.live.delete(5001);
        writeStatus(dataDir, { state: "stopped", watchdog_pid: 5000, pid: null });
        processes.live.delete(5000);
        processes.child?.exit(0);
      }
    }, 10);
    const result = await runner.stop(5000);
    clearInterval(obey);
    assert.deepEqual(result, { graceful: true, killed: [] });
    assert.deepEqual(processes.kills, []);
    assert.deepEqual(exits, [0]);
    assert.equal(runner.pid, undefined);
  });

  test("stop: a watchdog that does not answer is killed with its server, within the timeout", async () => {
    const { processes, runner } = makeRunner();
    const dataDir = tempDir();
    runner.start(launchOptions(dataDir));
    writeStatus(dataDir, { state: "running", watchdog_pid: 5000, pid: 5001 });
    processes.live.add(5001);
    const started = Date.now();
    const result = await runner.stop(300);
    assert.ok(Date.now() - started < 2000, "stop took too long");
    assert.equal(fs.existsSync(watchdogPaths(dataDir).stop), true);
    assert.equal(result.graceful, false);
    assert.deepEqual(processes.kills, [
      [-5000, "SIGKILL"],
      [-5001, "SIGKILL"],
    ]);
    assert.equal(runner.pid, undefined);
  });

  test("stop: a server started by another watchdog is not ours to kill", async () => {
    const { processes, runner } = makeRunner();
    const dataDir = tempDir();
    runner.start(launchOptions(dataDir));
    writeStatus(dataDir, { state: "running", watchdog_pid: 7000, pid: 7001 });
    processes.live.add(7001);
    await runner.stop(100);
    assert.deepEqual(processes.kills, [[-5000, "SIGKILL"]]);
  });

  test("stop without a start does nothing", async () => {
    const { processes, runner } = makeRunner();
    assert.deepEqual(await runner.stop(), { graceful: true, killed: [] });
    assert.deepEqual(processes.spawned, []);
  });

  test("with real processes: nothing of the group is left running", async () => {
    // A stand-in watchdog that ignores SIGTERM and the stop-file and has a child of its
    // own in its process group, like the real one during a server start.
    const dir = tempDir();
    const script = path.join(dir, "stubborn.sh");
    const pids = path.join(dir, "pids");
    fs.writeFileSync(script, `#!/bin/sh\ntrap '' TERM\nsleep 300 &\necho "$$ $!" > '${pids}'\nwait\n`, { mode: 0o755 });
    const exits: (NodeJS.Signals | null)[] = [];
    const runner = new WatchdogRunner({ onOutput: () => undefined, onExit: (_code, signal) => exits.push(signal) }, realProcesses);
    runner.start({ ...launchOptions(path.join(dir, "data")), python: script, cwd: dir, env: process.env });
    const written = await waitFor(() => (fs.existsSync(pids) ? fs.readFileSync(pids, "utf8").trim() : ""), 5000, "pids");
    const [shell, sleeper] = written
      .split(" ")
      .map(Number) as [number, number];
    const result = await runner.stop(300);
    assert.equal(result.graceful, false);
    assert.deepEqual(exits, ["SIGKILL"]);
    await waitFor(() => !running(shell) && !running(sleeper), 5000, "the group to be gone");
  });
});

group("ports", () => {
  test("a free port is free, and taken once listened on", async () => {
    const port = await freePort();
    assert.ok(port > 0);
    assert.equal(await portFree(port), true);
    const net = await import("node:net");
    const server = net.createServer().listen(port, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      assert.equal(await portFree(port), false);
    } finally {
      server.close();
    }
  });
});
