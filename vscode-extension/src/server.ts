// Running the server: one storykit-watchdog process per start, which runs and
// supervises `storykit serve`. The watchdog's status file says how the server is doing
// (see status.ts); this module only starts the watchdog and makes sure it goes away.
//
// Stopping never relies on one mechanism: the stop-file asks the watchdog to stop the
// server cleanly; if that has not happened within a few seconds, the watchdog's and the
// server's process groups are killed. And --parent-pid makes the watchdog stop by itself
// when the extension host dies without running any of this.

import type { ChildProcess, SpawnOptions } from "node:child_process";
import { spawn as nodeSpawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";

import { LineSplitter } from "./log";
import { effectiveState, pidAlive, readStatus, watchdogPaths, type WatchdogStatus } from "./status";

export const HOST = "127.0.0.1";
/** The origin scheme of VS Code's webviews; the host part changes per window. */
export const WEBVIEW_ORIGINS = "vscode-webview://*";
/** The watchdog's SIGTERM→SIGKILL delay for the server: short, so a stop fits in our wait. */
const KILL_TIMEOUT_S = 3;

export interface LaunchOptions {
  python: string;
  dataDir: string;
  port: number;
  serverArgs: readonly string[];
  /** Origins for CORS_ORIGINS besides the webview scheme. */
  corsOrigins: readonly string[];
  /** The process whose exit stops the watchdog: the extension host. */
  parentPid: number;
  cwd: string | undefined;
  env: NodeJS.ProcessEnv;
}

export interface Launch {
  command: string;
  args: string[];
  cwd: string | undefined;
  env: NodeJS.ProcessEnv;
}

/** CORS_ORIGINS for the server: what the environment had, the webviews, and the extras. */
export function corsOrigins(existing: string | undefined, extra: readonly string[]): string {
  const all = [...(existing ?? "").split(","), WEBVIEW_ORIGINS, ...extra].map((o) => o.trim()).filter(Boolean);
  return [...new Set(all)].join(",");
}

/** The watchdog command line, with the server's command after `--`. */
export function watchdogLaunch(o: LaunchOptions): Launch {
  const server = [o.python, "-m", "storykit_cli", "serve", "--host", HOST, "--port", String(o.port), "--data-dir", o.dataDir, ...o.serverArgs];
  return {
    command: o.python,
    args: [
      "-m",
      "storykit_watchdog",
      "--data-dir",
      o.dataDir,
      "--parent-pid",
      String(o.parentPid),
      "--kill-timeout",
      String(KILL_TIMEOUT_S),
      "--",
      ...server,
    ],
    cwd: o.cwd,
    env: {
      ...o.env,
      CORS_ORIGINS: corsOrigins(o.env["CORS_ORIGINS"], o.corsOrigins),
      STORYKIT_DATA_DIR: o.dataDir,
      PYTHONUNBUFFERED: "1",
    },
  };
}

/** A free port on the loopback interface, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** The first free port after `port` (what `storykit serve` suggests too). */
export async function nextFreePort(port: number): Promise<number | undefined> {
  for (let candidate = port + 1; candidate < Math.min(port + 100, 65536); candidate++) {
    if (await portFree(candidate)) return candidate;
  }
  return undefined;
}

/** The parts of child_process and process we use, so tests can give fakes. */
export interface ProcessApi {
  spawn(command: string, args: string[], options: SpawnOptions): ChildProcess;
  /** process.kill: a negative pid signals the whole process group. */
  kill(pid: number, signal: NodeJS.Signals | 0): void;
  alive(pid: number): boolean;
}

export const realProcesses: ProcessApi = {
  spawn: (command, args, options) => nodeSpawn(command, args, options),
  kill: (pid, signal) => process.kill(pid, signal),
  alive: pidAlive,
};

export interface RunnerEvents {
  /** A line the watchdog printed (its JSON log is on stderr). */
  onOutput(line: string, stream: "stdout" | "stderr"): void;
  /** The watchdog process ended (code 2: another watchdog holds the data directory). */
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

export interface StopResult {
  /** The watchdog reported "stopped" (or exited) in time. */
  graceful: boolean;
  /** Process groups that had to be killed. */
  killed: number[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true or the deadline passes; returns the last result. */
export async function pollUntil(check: () => boolean, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** One watchdog process that this extension host started. */
export class WatchdogRunner {
  private child: ChildProcess | undefined;
  private exited = false;
  private launchedDataDir: string | undefined;

  constructor(
    private readonly events: RunnerEvents,
    private readonly processes: ProcessApi = realProcesses,
  ) {}

  /** The pid of our watchdog while it runs. */
  get pid(): number | undefined {
    return this.child && !this.exited ? this.child.pid : undefined;
  }

  get dataDir(): string | undefined {
    return this.pid !== undefined ? this.launchedDataDir : undefined;
  }

  /** Spawn the watchdog. It runs in its own process group so it can be killed whole. */
  start(options: LaunchOptions): number {
    if (this.pid !== undefined) throw new Error("the watchdog is already running");
    const launch = watchdogLaunch(options);
    const paths = watchdogPaths(options.dataDir);
    // The watchdog would make the folder too; making it now lets the status watch start
    // before the first status is written. A stop-file left from before would stop it at once.
    fs.mkdirSync(paths.dir, { recursive: true });
    fs.rmSync(paths.stop, { force: true });
    const child = this.processes.spawn(launch.command, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.exited = false;
    this.launchedDataDir = options.dataDir;
    for (const stream of ["stdout", "stderr"] as const) {
      const splitter = new LineSplitter();
      const source = child[stream];
      source?.setEncoding("utf8");
      source?.on("data", (chunk: string) => splitter.push(chunk).forEach((line) => this.events.onOutput(line, stream)));
      source?.on("end", () => splitter.flush().forEach((line) => this.events.onOutput(line, stream)));
    }
    child.once("error", (err) => {
      // spawn failed (e.g. the interpreter vanished): there will be no exit event.
      if (this.child !== child) return;
      this.exited = true;
      this.events.onOutput(`could not start the watchdog: ${err.message}`, "stderr");
      this.events.onExit(null, null);
    });
    child.once("exit", (code, signal) => {
      if (this.child !== child) return;
      this.exited = true;
      this.events.onExit(code, signal);
    });
    if (child.pid === undefined) throw new Error(`could not start ${launch.command}`);
    return child.pid;
  }

  /**
   * Stop the watchdog and its server: the stop-file, a wait of at most `timeoutMs` for the
   * watchdog to say "stopped", then SIGKILL to whatever is left of both process groups.
   */
  async stop(timeoutMs = 5000): Promise<StopResult> {
    const child = this.child;
    const dataDir = this.launchedDataDir;
    if (!child || child.pid === undefined || dataDir === undefined) return { graceful: true, killed: [] };
    const paths = watchdogPaths(dataDir);
    const pid = child.pid;
    let lastStatus: WatchdogStatus | undefined = readStatus(paths.status);
    if (!this.exited) requestStop(dataDir);
    const graceful = await pollUntil(() => {
      if (this.exited) return true;
      const status = readStatus(paths.status);
      if (status) lastStatus = status;
      return status?.watchdogPid === pid && (status.state === "stopped" || status.state === "failed");
    }, timeoutMs);
    // The watchdog exits right after it reports "stopped": give it a moment to do so.
    if (graceful && !this.exited) await pollUntil(() => this.exited, 1000, 20);
    // The server runs in a process group of its own (the watchdog made it so); it is
    // ours only if our watchdog started it, and still there only if the status says so.
    const final = readStatus(paths.status) ?? lastStatus;
    const serverPid = final?.watchdogPid === pid ? final.pid : null;
    const killed: number[] = [];
    for (const group of [this.exited ? null : pid, serverPid]) {
      if (group === null || !this.processes.alive(group)) continue;
      try {
        this.processes.kill(-group, "SIGKILL");
        killed.push(group);
      } catch {
        // already gone
      }
    }
    if (!this.exited && killed.includes(pid)) {
      await pollUntil(() => this.exited, 1000, 20); // let the exit event arrive
    }
    this.child = undefined;
    return { graceful, killed };
  }
}

/** Ask whichever watchdog runs for this data directory to stop (docs/watchdog.md: stop-file). */
export function requestStop(dataDir: string): void {
  const paths = watchdogPaths(dataDir);
  fs.mkdirSync(paths.dir, { recursive: true });
  fs.writeFileSync(paths.stop, "");
}

/** Wait until a watchdog we do not own has stopped (it was asked via the stop-file). */
export async function waitStopped(dataDir: string, timeoutMs: number, alive: (pid: number) => boolean = pidAlive): Promise<boolean> {
  const file = watchdogPaths(dataDir).status;
  return pollUntil(() => effectiveState(readStatus(file), alive) === "stopped" || readStatus(file)?.state === "failed", timeoutMs);
}
