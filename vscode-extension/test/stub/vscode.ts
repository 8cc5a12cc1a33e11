// A stand-in for the `vscode` module in unit tests (scripts/build.mjs aliases `vscode`
// to this file). It implements the few API calls the extension makes, records what the
// extension did, and lets a test script the user's answers. Tests import `stub` from
// here to drive it; the extension's code sees an ordinary `vscode` module.

import * as path from "node:path";

type Listener<T> = (value: T) => unknown;

export class EventEmitter<T> {
  private listeners = new Set<Listener<T>>();
  event = (listener: Listener<T>) => {
    this.listeners.add(listener);
    return new Disposable(() => this.listeners.delete(listener));
  };
  fire(value: T): void {
    for (const listener of [...this.listeners]) listener(value);
  }
  dispose(): void {
    this.listeners.clear();
  }
}

export class Disposable {
  constructor(private readonly callback: () => unknown = () => undefined) {}
  dispose(): void {
    this.callback();
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query = "",
  ) {}
  static parse(value: string): Uri {
    const url = new URL(value);
    return new Uri(url.protocol.replace(/:$/, ""), url.host, url.pathname, url.search.replace(/^\?/, ""));
  }
  static file(fsPath: string): Uri {
    return new Uri("file", "", fsPath);
  }
  static joinPath(base: Uri, ...parts: string[]): Uri {
    return new Uri(base.scheme, base.authority, path.posix.join(base.path, ...parts));
  }
  get fsPath(): string {
    return this.path;
  }
  toString(_skipEncoding?: boolean): string {
    return `${this.scheme}://${this.authority}${this.path}${this.query ? `?${this.query}` : ""}`;
  }
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}
export enum ViewColumn {
  Active = -1,
  One = 1,
}
export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

/** A LogOutputChannel that keeps every line. */
export class FakeChannel {
  readonly lines: string[] = [];
  shown = 0;
  constructor(readonly name: string) {}
  private add(level: string, message: string) {
    this.lines.push(`[${level}] ${message}`);
  }
  info(message: string) {
    this.add("info", message);
  }
  warn(message: string) {
    this.add("warn", message);
  }
  error(message: string) {
    this.add("error", message);
  }
  debug(message: string) {
    this.add("debug", message);
  }
  trace(message: string) {
    this.add("trace", message);
  }
  appendLine(message: string) {
    this.add("info", message);
  }
  append(message: string) {
    this.add("info", message);
  }
  show() {
    this.shown++;
  }
  hide() {}
  clear() {}
  dispose() {}
}

export class FakeStatusBarItem {
  text = "";
  tooltip: string | undefined;
  command: string | undefined;
  name: string | undefined;
  backgroundColor: ThemeColor | undefined;
  accessibilityInformation: unknown;
  visible = false;
  constructor(readonly id: string) {}
  show() {
    this.visible = true;
  }
  hide() {
    this.visible = false;
  }
  dispose() {}
}

export class FakeWebview {
  html = "";
  readonly cspSource = "https://webview.test";
  readonly posted: unknown[] = [];
  readonly received = new EventEmitter<unknown>();
  readonly onDidReceiveMessage = this.received.event;
  constructor(readonly options: unknown) {}
  asWebviewUri(uri: Uri): Uri {
    return Uri.parse(`https://webview.test${uri.path}`);
  }
  postMessage(message: unknown): Promise<boolean> {
    this.posted.push(message);
    return Promise.resolve(true);
  }
}

export class FakePanel {
  readonly webview: FakeWebview;
  iconPath: Uri | undefined;
  revealed = 0;
  disposed = false;
  private readonly disposeEmitter = new EventEmitter<void>();
  readonly onDidDispose = this.disposeEmitter.event;
  constructor(
    readonly viewType: string,
    readonly title: string,
    readonly options: Record<string, unknown>,
  ) {
    this.webview = new FakeWebview(options);
  }
  reveal() {
    this.revealed++;
  }
  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    this.disposeEmitter.fire();
  }
}

interface Message {
  level: "info" | "warning" | "error";
  text: string;
  actions: string[];
}

/** What the extension did, and the answers the test scripts in advance. */
export const stub = {
  channels: [] as FakeChannel[],
  items: [] as FakeStatusBarItem[],
  panels: [] as FakePanel[],
  messages: [] as Message[],
  commands: new Map<string, (...args: unknown[]) => unknown>(),
  executed: [] as unknown[][],
  config: {} as Record<string, unknown>,
  /** Every call to WorkspaceConfiguration.update (the extension should make none). */
  configUpdates: [] as unknown[][],
  workspaceFolder: undefined as string | undefined,
  inputBoxAnswers: [] as (string | undefined)[],
  inputBoxes: [] as Record<string, unknown>[],
  /** Answers to showXMessage, by a substring of the message; default: dismissed. */
  answer: (_text: string, _actions: string[]): string | undefined => undefined,
  externalUri: (uri: Uri): Uri => uri,
  clipboard: "",
  configListeners: new EventEmitter<{ affectsConfiguration(section: string): boolean }>(),
  reset(): void {
    this.channels.length = 0;
    this.items.length = 0;
    this.panels.length = 0;
    this.messages.length = 0;
    this.commands.clear();
    this.executed.length = 0;
    this.config = {};
    this.configUpdates.length = 0;
    this.workspaceFolder = undefined;
    this.inputBoxAnswers.length = 0;
    this.inputBoxes.length = 0;
    this.answer = () => undefined;
    this.externalUri = (uri) => uri;
    this.clipboard = "";
    this.configListeners = new EventEmitter();
  },
  /** Everything written to the output channels, one string. */
  logText(): string {
    return this.channels.flatMap((c) => c.lines).join("\n");
  },
};

function message(level: Message["level"]) {
  return (text: string, ...rest: unknown[]) => {
    const actions = rest.filter((r): r is string => typeof r === "string");
    stub.messages.push({ level, text, actions });
    return Promise.resolve(stub.answer(text, actions));
  };
}

export const window = {
  createOutputChannel(name: string) {
    const channel = new FakeChannel(name);
    stub.channels.push(channel);
    return channel;
  },
  createStatusBarItem(id: string) {
    const item = new FakeStatusBarItem(id);
    stub.items.push(item);
    return item;
  },
  createWebviewPanel(viewType: string, title: string, _column: unknown, options: Record<string, unknown>) {
    const panel = new FakePanel(viewType, title, options);
    stub.panels.push(panel);
    return panel;
  },
  showInformationMessage: message("info"),
  showWarningMessage: message("warning"),
  showErrorMessage: message("error"),
  showInputBox(options: Record<string, unknown>) {
    stub.inputBoxes.push(options);
    return Promise.resolve(stub.inputBoxAnswers.shift());
  },
  withProgress<T>(_options: unknown, task: (progress: unknown, token: { isCancellationRequested: boolean }) => Promise<T>) {
    return task({ report() {} }, { isCancellationRequested: false });
  },
};

export const workspace = {
  get workspaceFolders() {
    return stub.workspaceFolder ? [{ uri: Uri.file(stub.workspaceFolder), name: "ws", index: 0 }] : undefined;
  },
  getConfiguration(section: string) {
    return {
      get<T>(key: string): T | undefined {
        return stub.config[`${section}.${key}`] as T | undefined;
      },
      update(...args: unknown[]) {
        stub.configUpdates.push(args);
        return Promise.resolve();
      },
    };
  },
  onDidChangeConfiguration(listener: Listener<{ affectsConfiguration(section: string): boolean }>) {
    return stub.configListeners.event(listener);
  },
};

export const commands = {
  registerCommand(id: string, callback: (...args: unknown[]) => unknown) {
    stub.commands.set(id, callback);
    return new Disposable(() => stub.commands.delete(id));
  },
  executeCommand(id: string, ...args: unknown[]) {
    stub.executed.push([id, ...args]);
    const command = stub.commands.get(id);
    return Promise.resolve(command ? command(...args) : undefined);
  },
};

export const env = {
  asExternalUri(uri: Uri) {
    return Promise.resolve(stub.externalUri(uri));
  },
  clipboard: {
    writeText(text: string) {
      stub.clipboard = text;
      return Promise.resolve();
    },
  },
};

/** An in-memory SecretStorage. */
export class FakeSecrets {
  readonly values = new Map<string, string>();
  get(key: string) {
    return Promise.resolve(this.values.get(key));
  }
  store(key: string, value: string) {
    this.values.set(key, value);
    return Promise.resolve();
  }
  delete(key: string) {
    this.values.delete(key);
    return Promise.resolve();
  }
}
