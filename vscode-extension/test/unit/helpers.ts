// Shared by the unit tests: temporary folders, status files, and waiting with a deadline.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after } from "node:test";

const made: string[] = [];
after(() => made.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "storykit-ext-test-"));
  made.push(dir);
  return dir;
}

/** A status file as the watchdog writes it: a temporary file renamed over the old one. */
export function writeStatus(dataDir: string, fields: Record<string, unknown>): void {
  const dir = path.join(dataDir, "watchdog");
  fs.mkdirSync(dir, { recursive: true });
  const status = {
    state: "running",
    watchdog_pid: process.pid,
    pid: null,
    port: 8001,
    url: "http://127.0.0.1:8001",
    restarts: 0,
    last_exit: null,
    next_retry_at: null,
    updated_at: new Date().toISOString(),
    command: ["storykit", "serve"],
    ...fields,
  };
  const tmp = path.join(dir, `status.json.${process.hrtime.bigint()}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(status));
  fs.renameSync(tmp, path.join(dir, "status.json"));
}

/** Wait until `check` returns something truthy; fail after `timeoutMs`. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
