// The API key: kept in VS Code's SecretStorage (the OS keychain on the desktop), never in
// settings, files we write, logs or URLs.

import * as fs from "node:fs";

import { watchdogPaths } from "./status";

/** The part of vscode.SecretStorage we use. */
export interface SecretStore {
  get(key: string): Thenable<string | undefined>;
  store(key: string, value: string): Thenable<void>;
  delete(key: string): Thenable<void>;
}

const SECRET_NAME = "storykit.apiKey";
/** The dashboard refuses longer keys; so do we, rather than store something it drops. */
export const MAX_KEY_LENGTH = 512;

/** Why a typed key is not acceptable, or undefined if it is. */
export function validateKey(value: string): string | undefined {
  const key = value.trim();
  if (!key) return undefined; // empty means "remove the stored key"
  if (key.length > MAX_KEY_LENGTH) return `A key is at most ${MAX_KEY_LENGTH} characters.`;
  if (/[\s,]/.test(key)) return "A key has no spaces or commas.";
  return undefined;
}

export class KeyStore {
  private readonly listeners = new Set<(key: string | undefined) => void>();

  constructor(private readonly secrets: SecretStore) {}

  async get(): Promise<string | undefined> {
    const key = await this.secrets.get(SECRET_NAME);
    return key ? key : undefined;
  }

  async set(key: string): Promise<void> {
    await this.secrets.store(SECRET_NAME, key.trim());
    this.emit(key.trim());
  }

  async clear(): Promise<void> {
    await this.secrets.delete(SECRET_NAME);
    this.emit(undefined);
  }

  onDidChange(listener: (key: string | undefined) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private emit(key: string | undefined): void {
    for (const listener of this.listeners) listener(key);
  }
}

/**
 * The admin key the server generated in DATA_DIR/api-key (it does so only when
 * API_TOKENS is not set), or undefined if there is none.
 */
export function readGeneratedKey(dataDir: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(watchdogPaths(dataDir).apiKey, "utf8");
  } catch {
    return undefined;
  }
  const key = text.trim();
  return key && !validateKey(key) ? key : undefined;
}
