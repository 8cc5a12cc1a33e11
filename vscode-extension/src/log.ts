// The "storykit" output channel, and the tail of the server's log file into it.
//
// Every line goes through redact() first. Keys are never logged on purpose, but the
// server prints a key it generates once on stdout, and that line reaches server.log
// (which we tail) — so the channel has to scrub what it is given, not trust it.

import * as fs from "node:fs";

/** What the extension writes to: VS Code's LogOutputChannel, or a fake in tests. */
export interface LogSink {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  show(preserveFocus?: boolean): void;
}

const MASK = "[redacted]";
/** Shorter strings are not treated as secrets: masking "a" would mangle every line. */
const MIN_SECRET = 8;

export class Log {
  private readonly secrets = new Set<string>();

  constructor(private readonly sink: LogSink) {}

  /** Mask this value in everything logged from now on. */
  addSecret(secret: string | undefined): void {
    const value = secret?.trim();
    if (value && value.length >= MIN_SECRET) this.secrets.add(value);
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join(MASK);
    return out;
  }

  info(message: string): void {
    this.sink.info(this.redact(message));
  }

  warn(message: string): void {
    this.sink.warn(this.redact(message));
  }

  error(message: string): void {
    this.sink.error(this.redact(message));
  }

  show(): void {
    this.sink.show(true);
  }
}

/** One line of the watchdog's JSON log on stderr, made readable; other text as is. */
export function formatWatchdogLine(line: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return line;
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return line;
  const { event, at: _at, level: _level, logger: _logger, ...fields } = parsed as Record<string, unknown>;
  if (typeof event !== "string") return line;
  const rest = Object.entries(fields).map(([name, value]) =>
    `${name}=${typeof value === "string" ? value : JSON.stringify(value)}`,
  );
  return [event, ...rest].join(" ");
}

/** Splits a byte stream into lines, keeping an unfinished last line for the next chunk. */
export class LineSplitter {
  private pending = "";

  push(chunk: string): string[] {
    const parts = (this.pending + chunk).split(/\r?\n/);
    this.pending = parts.pop() ?? "";
    return parts;
  }

  /** What is left when the stream ends. */
  flush(): string[] {
    const rest = this.pending;
    this.pending = "";
    return rest ? [rest] : [];
  }
}

export interface TailOptions {
  /** Called with each complete new line. */
  onLine: (line: string) => void;
  pollMs?: number;
  /** Start at the current end of the file (the default) or at its beginning. */
  fromStart?: boolean;
}

/**
 * Follows a log file that the watchdog appends to and rotates (renames it to .1 and
 * starts a new one). A poll is the ground truth; fs.watch only makes it prompt.
 * Reading starts at the file's end so an old run's output is not replayed.
 */
export class LogTail {
  private offset = 0;
  /** The inode we read from: a different one under the same name means it was rotated. */
  private inode: number | undefined;
  private readonly splitter = new LineSplitter();
  private readonly timer: NodeJS.Timeout;
  private watcher: fs.FSWatcher | undefined;
  private reading = false;
  private disposed = false;

  constructor(
    private readonly file: string,
    private readonly options: TailOptions,
  ) {
    try {
      const stat = fs.statSync(file);
      this.inode = stat.ino;
      this.offset = options.fromStart ? 0 : stat.size;
    } catch {
      // not there yet: read it from its start when it appears
    }
    this.timer = setInterval(() => this.read(), options.pollMs ?? 500);
    this.timer.unref();
    this.watch();
  }

  private watch(): void {
    try {
      this.watcher = fs.watch(this.file, () => this.read());
      this.watcher.on("error", () => this.unwatch());
    } catch {
      this.watcher = undefined; // not there yet: the poll picks it up, and we retry then
    }
  }

  private unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Read whatever was appended since last time. */
  read(): void {
    if (this.reading || this.disposed) return;
    this.reading = true;
    try {
      let size: number;
      let ino: number;
      try {
        const stat = fs.statSync(this.file);
        size = stat.size;
        ino = stat.ino;
      } catch {
        return;
      }
      if (this.inode !== ino) {
        // Rotated (a new file under the same name): follow the new one from its start.
        if (this.inode !== undefined) this.offset = 0;
        this.inode = ino;
        this.unwatch();
        this.watch();
      }
      if (size < this.offset) this.offset = 0; // truncated
      if (size === this.offset) return;
      const length = size - this.offset;
      const buffer = Buffer.alloc(length);
      const fd = fs.openSync(this.file, "r");
      try {
        fs.readSync(fd, buffer, 0, length, this.offset);
      } finally {
        fs.closeSync(fd);
      }
      this.offset = size;
      for (const line of this.splitter.push(buffer.toString("utf8"))) this.options.onLine(line);
    } finally {
      this.reading = false;
    }
  }

  dispose(): void {
    this.read();
    this.disposed = true;
    clearInterval(this.timer);
    this.unwatch();
  }
}
