// code-server for the end-to-end test: installed once into a cache (install-code-server.sh),
// run with its own config, data and extension folders under a temporary directory, so
// nothing is written to the user's home.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const EXTENSION_ROOT = path.resolve(__dirname, "..", "..");

/** Installs code-server if the cache does not have it; returns its entry script. */
export async function installCodeServer(): Promise<string> {
  const script = path.join(EXTENSION_ROOT, "e2e", "install-code-server.sh");
  const { stdout } = await run("bash", [script], { maxBuffer: 64 * 1024 * 1024, timeout: 20 * 60_000 });
  const dir = stdout.trim().split("\n").pop() ?? "";
  const entry = path.join(dir, "node_modules", "code-server", "out", "node", "entry.js");
  if (!fs.existsSync(entry)) throw new Error(`code-server is not at ${entry}`);
  return entry;
}

/** Folders of one code-server instance; the environment points HOME and XDG_* into it. */
export function sandbox(root: string, extra: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; userData: string; extensions: string } {
  const home = path.join(root, "home");
  const userData = path.join(root, "user-data");
  const extensions = path.join(root, "extensions");
  for (const dir of [home, userData, extensions]) fs.mkdirSync(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, ".config"),
    XDG_DATA_HOME: path.join(home, ".local", "share"),
    XDG_CACHE_HOME: path.join(home, ".cache"),
    ...extra,
  };
  return { env, userData, extensions };
}

export async function installExtension(entry: string, box: ReturnType<typeof sandbox>, vsix: string): Promise<void> {
  await run(
    process.execPath,
    [entry, "--user-data-dir", box.userData, "--extensions-dir", box.extensions, "--install-extension", vsix],
    { env: box.env, timeout: 120_000 },
  );
}

export interface Running {
  url: string;
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts code-server on a free port (the kernel's choice) and waits for its address. */
export async function startCodeServer(entry: string, box: ReturnType<typeof sandbox>, folder: string): Promise<Running> {
  const child = spawn(
    process.execPath,
    [
      entry,
      "--auth", "none",
      "--bind-addr", "127.0.0.1:0",
      "--disable-telemetry",
      "--disable-update-check",
      "--disable-workspace-trust",
      "--disable-getting-started-override",
      "--user-data-dir", box.userData,
      "--extensions-dir", box.extensions,
      folder,
    ],
    { env: box.env, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const collect = (chunk: Buffer) => (output += chunk.toString("utf8"));
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`code-server did not start:\n${output}`)), 60_000);
    const check = () => {
      const match = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", check);
    child.stderr?.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`code-server exited (${code}):\n${output}`));
    });
  });
  return {
    url,
    process: child,
    output: () => output,
    // SIGTERM to its whole group (it and its extension host), as a closing session would.
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        return;
      }
      const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 15_000).unref());
      if ((await Promise.race([exited, timeout])) === "timeout") process.kill(-child.pid, "SIGKILL");
    },
  };
}
