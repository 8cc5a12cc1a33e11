// The watchdog's status file (DATA_DIR/watchdog/status.json, docs/watchdog.md): parsing,
// what the status bar says about it, and following it as it changes.

import * as fs from "node:fs";
import * as path from "node:path";

export const STATES = ["starting", "running", "backoff", "stopping", "stopped", "failed"] as const;
export type State = (typeof STATES)[number];

export interface LastExit {
  code: number | null;
  signal: number | string | null;
  reason: string;
  at: string | null;
}

export interface WatchdogStatus {
  state: State;
  watchdogPid: number | null;
  pid: number | null;
  port: number | null;
  url: string | null;
  restarts: number;
  lastExit: LastExit | null;
  nextRetryAt: string | null;
  updatedAt: string | null;
  command: string[];
}

/** Where the watchdog keeps its files for a data directory. */
export function watchdogPaths(dataDir: string) {
  const dir = path.join(dataDir, "watchdog");
  return {
    dir,
    status: path.join(dir, "status.json"),
    stop: path.join(dir, "stop"),
    serverLog: path.join(dir, "server.log"),
    apiKey: path.join(dataDir, "api-key"),
  };
}

const int = (value: unknown): number | null =>
  typeof value === "number" && Number.isInteger(value) ? value : null;
const str = (value: unknown): string | null => (typeof value === "string" ? value : null);

/**
 * The status, or undefined when the text is not a status file (empty, half written by a
 * writer that does not rename atomically, or a state this version does not know).
 */
export function parseStatus(text: string): WatchdogStatus | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return undefined;
  const data = raw as Record<string, unknown>;
  const state = data["state"];
  if (typeof state !== "string" || !(STATES as readonly string[]).includes(state)) return undefined;
  const exit = data["last_exit"];
  let lastExit: LastExit | null = null;
  if (exit && typeof exit === "object" && !Array.isArray(exit)) {
    const e = exit as Record<string, unknown>;
    const signal = e["signal"];
    lastExit = {
      code: int(e["code"]),
      signal: typeof signal === "number" || typeof signal === "string" ? signal : null,
      reason: str(e["reason"]) ?? "exited",
      at: str(e["at"]),
    };
  }
  const command = Array.isArray(data["command"])
    ? (data["command"] as unknown[]).filter((part): part is string => typeof part === "string")
    : [];
  return {
    state: state as State,
    watchdogPid: int(data["watchdog_pid"]),
    pid: int(data["pid"]),
    port: int(data["port"]),
    url: str(data["url"]),
    restarts: int(data["restarts"]) ?? 0,
    lastExit,
    nextRetryAt: str(data["next_retry_at"]),
    updatedAt: str(data["updated_at"]),
    command,
  };
}

export function readStatus(file: string): WatchdogStatus | undefined {
  try {
    return parseStatus(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}

/** True if a process with this pid exists (signal 0 checks without sending anything). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The state to believe. A watchdog killed with SIGKILL leaves its last status behind, so
 * any state but stopped/failed needs a live watchdog to be true.
 */
export function effectiveState(
  status: WatchdogStatus | undefined,
  alive: (pid: number) => boolean = pidAlive,
): State {
  if (!status) return "stopped";
  if (status.state === "stopped" || status.state === "failed") return status.state;
  if (status.watchdogPid === null || !alive(status.watchdogPid)) return "stopped";
  return status.state;
}

export function isActive(state: State): boolean {
  return state === "starting" || state === "running" || state === "backoff";
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** A theme colour id for the item's background, for states that need attention. */
  background?: "statusBarItem.warningBackground" | "statusBarItem.errorBackground";
}

const LABELS: Record<State, { icon: string; label: string }> = {
  starting: { icon: "$(sync~spin)", label: "starting" },
  running: { icon: "$(check)", label: "running" },
  backoff: { icon: "$(warning)", label: "backing off" },
  stopping: { icon: "$(sync~spin)", label: "stopping" },
  stopped: { icon: "$(circle-slash)", label: "stopped" },
  failed: { icon: "$(error)", label: "failed" },
};

function describeExit(exit: LastExit): string {
  const how = exit.signal !== null ? `signal ${exit.signal}` : exit.code !== null ? `code ${exit.code}` : "";
  return how ? `${exit.reason} (${how})` : exit.reason;
}

/** What the status bar item shows for a status. */
export function describe(
  status: WatchdogStatus | undefined,
  state: State = effectiveState(status),
  now: Date = new Date(),
): StatusView {
  const { icon, label } = LABELS[state];
  const lines = [`storykit server: ${label}`];
  if (status && state !== status.state) lines.push("(the watchdog that wrote the status is gone)");
  if (status?.url && isActive(state)) lines.push(`at ${status.url}`);
  if (status && status.restarts > 0) lines.push(`restarts: ${status.restarts}`);
  if (status?.lastExit && state !== "running") lines.push(`last exit: ${describeExit(status.lastExit)}`);
  if (state === "backoff" && status?.nextRetryAt) {
    const seconds = Math.max(0, Math.round((Date.parse(status.nextRetryAt) - now.getTime()) / 1000));
    if (Number.isFinite(seconds)) lines.push(`next start in ${seconds} s`);
  }
  lines.push(state === "running" ? "Click to open the dashboard." : "Click to start the server and open the dashboard.");
  const view: StatusView = { text: `${icon} storykit: ${label}`, tooltip: lines.join("\n") };
  if (state === "backoff") view.background = "statusBarItem.warningBackground";
  if (state === "failed") view.background = "statusBarItem.errorBackground";
  return view;
}

export interface WatcherOptions {
  onChange: (status: WatchdogStatus | undefined) => void;
  pollMs?: number;
  alive?: (pid: number) => boolean;
}

/**
 * Follows DATA_DIR/watchdog/status.json. The watchdog replaces the file by renaming a new
 * one over it, so we watch the folder (a watch on the file would stay on the old inode);
 * the folder may not exist yet, and fs.watch is not reliable everywhere (network file
 * systems, some containers), so a poll runs as well and is the ground truth.
 */
export class StatusWatcher {
  private last: string | undefined = undefined;
  private current: WatchdogStatus | undefined;
  private readonly timer: NodeJS.Timeout;
  private watcher: fs.FSWatcher | undefined;
  private readonly paths: ReturnType<typeof watchdogPaths>;

  constructor(
    readonly dataDir: string,
    private readonly options: WatcherOptions,
  ) {
    this.paths = watchdogPaths(dataDir);
    this.timer = setInterval(() => this.refresh(), options.pollMs ?? 1000);
    this.timer.unref();
    this.refresh();
  }

  get status(): WatchdogStatus | undefined {
    return this.current;
  }

  /** Read the file now; tell the listener if it changed. */
  refresh(): WatchdogStatus | undefined {
    this.ensureWatch();
    let text: string;
    try {
      text = fs.readFileSync(this.paths.status, "utf8");
    } catch {
      text = "";
    }
    const parsed = text ? parseStatus(text) : undefined;
    // A file we cannot parse keeps the last good status: a partial write is no news.
    if (text && !parsed) return this.current;
    // A watchdog killed with SIGKILL leaves the file as it was: its death is news too.
    const pid = parsed?.watchdogPid;
    const key = `${pid !== null && pid !== undefined && (this.options.alive ?? pidAlive)(pid)}|${text}`;
    if (key !== this.last) {
      this.last = key;
      this.current = parsed;
      this.options.onChange(parsed);
    }
    return this.current;
  }

  private ensureWatch(): void {
    if (this.watcher) return;
    try {
      this.watcher = fs.watch(this.paths.dir, (_event, name) => {
        if (!name || name.toString() === "status.json") this.refresh();
      });
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = undefined; // the folder went away: the poll re-creates the watch
      });
    } catch {
      this.watcher = undefined;
    }
  }

  dispose(): void {
    clearInterval(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
