// The storykit.* settings, read and checked in one place.

export type RestartPolicy = "ask" | "always" | "never";

export interface Settings {
  pythonPath: string;
  port: number;
  dataDir: string;
  serverArgs: string[];
  corsOrigins: string[];
  restartOnSettingsChange: RestartPolicy;
}

/** The part of vscode.WorkspaceConfiguration we use (a plain object in tests). */
export interface ConfigSource {
  get<T>(section: string): T | undefined;
}

export const DEFAULT_PORT = 8001;

/** Options the extension sets itself, which serverArgs must not repeat. */
const OWNED_ARGS = ["--host", "--port", "-p", "--data-dir"];

export class SettingsError extends Error {}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

export function readSettings(config: ConfigSource): Settings {
  const port = config.get<number>("port");
  const policy = config.get<string>("restartOnSettingsChange");
  return {
    pythonPath: (config.get<string>("pythonPath") ?? "").trim(),
    port: typeof port === "number" && Number.isInteger(port) && port >= 0 && port <= 65535 ? port : DEFAULT_PORT,
    dataDir: (config.get<string>("dataDir") ?? "").trim(),
    serverArgs: strings(config.get("serverArgs")),
    corsOrigins: strings(config.get("corsOrigins")).map((o) => o.trim()).filter(Boolean),
    restartOnSettingsChange: policy === "always" || policy === "never" ? policy : "ask",
  };
}

/** Throws SettingsError when serverArgs sets what the extension must control. */
export function checkServerArgs(args: readonly string[]): void {
  for (const arg of args) {
    const name = arg.split("=", 1)[0] ?? arg;
    if (OWNED_ARGS.includes(name)) {
      throw new SettingsError(
        `storykit.serverArgs must not contain ${name}: use the storykit.port and storykit.dataDir settings`,
      );
    }
  }
}

/** `~` and `${workspaceFolder}` in a path setting. */
export function expandPath(value: string, home: string, workspaceFolder: string | undefined): string {
  let out = value;
  if (out === "~" || out.startsWith("~/")) out = home + out.slice(1);
  if (workspaceFolder !== undefined) out = out.split("${workspaceFolder}").join(workspaceFolder);
  return out;
}
