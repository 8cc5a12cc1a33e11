// The Python side: which interpreter runs storykit, and asking it where the data lives.

import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The interpreter to use: the setting if given, else the workspace's .venv (the usual
 * place for a project's own environment), else python3 on PATH.
 */
export function resolvePython(
  setting: string,
  workspaceFolder: string | undefined,
  exists: (file: string) => boolean = fs.existsSync,
): string {
  if (setting) return setting;
  if (workspaceFolder) {
    const venv = path.join(workspaceFolder, ".venv", "bin", "python");
    if (exists(venv)) return venv;
  }
  return "python3";
}

export interface Probe {
  /** The data directory storykit resolves for the workspace (absolute). */
  dataDir: string;
  version: string;
}

export class PythonError extends Error {
  constructor(
    message: string,
    /** A command that fixes it, shown with a "Copy" button. */
    readonly fix?: string,
  ) {
    super(message);
  }
}

// Run with cwd = the workspace folder, so storykit's default data directory is the one
// `storykit serve` would use for this repository. Exit 3 means "not installed".
const PROBE = `
import json, sys
try:
    import storykit_watchdog, storykit_cli
    from storykit.paths import resolve_data_dir
except ImportError as exc:
    print(json.dumps({"missing": str(exc)}))
    sys.exit(3)
import storykit
print(json.dumps({"dataDir": str(resolve_data_dir(sys.argv[1] or None)),
                  "version": getattr(storykit, "__version__", "unknown")}))
`;

export type Runner = (
  file: string,
  args: string[],
  options: { cwd: string | undefined; timeoutMs: number },
) => Promise<{ code: number | null; stdout: string; stderr: string; error?: NodeJS.ErrnoException }>;

export const runFile: Runner = (file, args, { cwd, timeoutMs }) =>
  new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: timeoutMs, encoding: "utf8" }, (error, stdout, stderr) => {
      const err = error as (NodeJS.ErrnoException & { code?: string | number }) | null;
      const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
      const result = { code, stdout, stderr };
      resolve(err && typeof err.code !== "number" ? { ...result, error: err } : result);
    });
  });

/** How to install storykit into this interpreter (from a checkout if the workspace is one). */
export function installCommand(python: string, workspaceFolder: string | undefined): string {
  const quoted = /^[\w@%+=:,./-]+$/.test(python) ? python : `'${python.replace(/'/g, "'\\''")}'`;
  if (workspaceFolder && isStorykitCheckout(workspaceFolder)) {
    return `${quoted} -m pip install -e '${workspaceFolder.replace(/'/g, "'\\''")}'`;
  }
  return `${quoted} -m pip install storykit`;
}

function isStorykitCheckout(folder: string): boolean {
  try {
    return /^name\s*=\s*"storykit"\s*$/m.test(fs.readFileSync(path.join(folder, "pyproject.toml"), "utf8"));
  } catch {
    return false;
  }
}

/**
 * Checks that the interpreter has storykit (the watchdog and the CLI) and asks it for
 * the data directory. Throws PythonError with a message for the user.
 */
export async function probePython(
  python: string,
  dataDirSetting: string,
  workspaceFolder: string | undefined,
  run: Runner = runFile,
): Promise<Probe> {
  const result = await run(python, ["-c", PROBE, dataDirSetting], { cwd: workspaceFolder, timeoutMs: 30_000 });
  if (result.error?.code === "ENOENT") {
    throw new PythonError(
      `Python interpreter not found: ${python}. Set storykit.pythonPath to an interpreter that has storykit installed.`,
    );
  }
  if (result.code === 3) {
    throw new PythonError(
      `storykit is not installed for ${python}. Install it with: ${installCommand(python, workspaceFolder)}`,
      installCommand(python, workspaceFolder),
    );
  }
  const line = result.stdout.trim().split("\n").pop() ?? "";
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    parsed = undefined;
  }
  const data = parsed as { dataDir?: unknown; version?: unknown } | undefined;
  if (result.code !== 0 || typeof data?.dataDir !== "string") {
    const detail = (result.stderr || result.stdout || result.error?.message || "").trim().split("\n").slice(-3).join(" ");
    throw new PythonError(`Could not run ${python} to check storykit (exit ${result.code ?? "?"}): ${detail}`);
  }
  return { dataDir: data.dataDir, version: typeof data.version === "string" ? data.version : "unknown" };
}
