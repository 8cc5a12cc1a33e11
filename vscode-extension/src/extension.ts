// The extension's entry point: commands, the status bar item, and the wiring between
// the watchdog (server.ts), its status file (status.ts), the key (secrets.ts) and the
// dashboard panel (webview.ts).

import * as os from "node:os";

import * as vscode from "vscode";

import { checkServerArgs, expandPath, readSettings, SettingsError, type Settings } from "./config";
import { formatWatchdogLine, Log, LogTail } from "./log";
import { probePython, PythonError, resolvePython, type Runner, runFile } from "./python";
import { KeyStore, readGeneratedKey, validateKey } from "./secrets";
import {
  freePort,
  HOST,
  nextFreePort,
  pollUntil,
  portFree,
  type ProcessApi,
  realProcesses,
  requestStop,
  waitStopped,
  WatchdogRunner,
} from "./server";
import { describe, effectiveState, isActive, StatusWatcher, watchdogPaths, type State, type WatchdogStatus } from "./status";
import { DashboardPanel } from "./webview";

/** How long "Open dashboard" waits for a server that is starting. */
const START_TIMEOUT_MS = 60_000;
/** How long deactivation waits for the watchdog to stop before killing it. */
const STOP_TIMEOUT_MS = 5_000;

/** Seams for tests: the processes we start, how we run Python, how long a stop may take. */
export interface Dependencies {
  processes: ProcessApi;
  runPython: Runner;
  stopTimeoutMs: number;
}

interface Resolved {
  python: string;
  dataDir: string;
  settings: Settings;
}

class Controller implements vscode.Disposable {
  private readonly log: Log;
  private readonly keys: KeyStore;
  private readonly runner: WatchdogRunner;
  private readonly item: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private watcher: StatusWatcher | undefined;
  private tail: LogTail | undefined;
  private panel: DashboardPanel | undefined;
  private state: State = "stopped";
  private stopping = false;
  private importing = false;
  private starting: Promise<void> | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly deps: Dependencies,
  ) {
    const channel = vscode.window.createOutputChannel("storykit", { log: true });
    this.log = new Log(channel);
    this.keys = new KeyStore(context.secrets);
    this.runner = new WatchdogRunner(
      {
        onOutput: (line) => this.log.info(`[watchdog] ${formatWatchdogLine(line)}`),
        onExit: (code, signal) => this.watchdogExited(code, signal),
      },
      deps.processes,
    );
    this.item = vscode.window.createStatusBarItem("storykit.status", vscode.StatusBarAlignment.Left, 10);
    this.item.name = "storykit";
    this.item.command = "storykit.openDashboard";
    this.showStatus(undefined);
    this.item.show();
    this.disposables.push(channel, this.item);
  }

  register(): void {
    const command = (id: string, run: () => Promise<unknown>) =>
      vscode.commands.registerCommand(id, () =>
        run().catch((err: unknown) => this.fail(err instanceof Error ? err.message : String(err))),
      );
    this.disposables.push(
      command("storykit.start", () => this.start()),
      command("storykit.stop", () => this.stop()),
      command("storykit.openDashboard", () => this.openDashboard()),
      command("storykit.setApiKey", () => this.setApiKey()),
      command("storykit.showLogs", async () => this.log.show()),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration("storykit")) void this.settingsChanged(event);
      }),
      this.keys.onDidChange((key) => {
        this.log.addSecret(key);
        void this.panel?.keyChanged();
      }),
    );
    void this.keys.get().then((key) => this.log.addSecret(key));
  }

  /** At start-up: follow the status of a server that may already run for this workspace. */
  async attach(): Promise<void> {
    try {
      await this.resolve();
    } catch (err) {
      // Not an error yet: the user has not asked for anything. Start says what is wrong.
      this.log.info(`not following a server yet: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private settings(): Settings {
    return readSettings(vscode.workspace.getConfiguration("storykit"));
  }

  private workspaceFolder(): string | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  }

  /** The interpreter and the data directory, checked; starts following the status file. */
  private async resolve(): Promise<Resolved> {
    const settings = this.settings();
    const folder = this.workspaceFolder();
    const python = resolvePython(expandPath(settings.pythonPath, os.homedir(), folder), folder);
    const probe = await probePython(python, expandPath(settings.dataDir, os.homedir(), folder), folder, this.deps.runPython);
    if (this.watcher?.dataDir !== probe.dataDir) {
      this.watcher?.dispose();
      this.watcher = new StatusWatcher(probe.dataDir, { onChange: (status) => this.statusChanged(status) });
    }
    return { python, dataDir: probe.dataDir, settings };
  }

  private statusChanged(status: WatchdogStatus | undefined): void {
    this.showStatus(status);
    if (this.state === "running" && status?.url) {
      void this.panel?.load(status.url);
      void this.importGeneratedKey();
    }
  }

  private showStatus(status: WatchdogStatus | undefined): void {
    const previous = this.state;
    this.state = effectiveState(status);
    const view = describe(status, this.state);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.accessibilityInformation = { label: view.text.replace(/^\$\([^)]*\)\s*/, "") };
    this.item.backgroundColor = view.background ? new vscode.ThemeColor(view.background) : undefined;
    if (previous !== this.state) this.log.info(`server ${this.state}${status?.url ? ` at ${status.url}` : ""}`);
  }

  /** Start the server; a second call while the first is under way joins it. */
  start(): Promise<void> {
    this.starting ??= this.startOnce().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    const resolved = await this.resolveOrExplain();
    if (!resolved) return;
    const { python, dataDir, settings } = resolved;
    try {
      checkServerArgs(settings.serverArgs);
    } catch (err) {
      if (err instanceof SettingsError) {
        void this.offerSettings(err.message);
        return;
      }
      throw err;
    }
    const status = this.watcher?.refresh();
    if (isActive(effectiveState(status))) {
      if (this.runner.pid === undefined) {
        this.log.info(`a watchdog (pid ${status?.watchdogPid}) already runs for ${dataDir}: using it`);
        void vscode.window.showInformationMessage(`storykit is already running for this workspace (${status?.url ?? "starting"}).`);
      }
      return;
    }
    if (this.runner.pid !== undefined) return; // ours, and it has not written its status yet
    const port = await this.choosePort(settings.port);
    if (port === undefined) return;
    const serverUrl = `http://${HOST}:${port}`;
    const external = new URL((await vscode.env.asExternalUri(vscode.Uri.parse(`${serverUrl}/`))).toString(true)).origin;
    const corsOrigins = [...settings.corsOrigins];
    if (external !== serverUrl) corsOrigins.push(external); // code-server, or a forwarded port
    this.startTail(dataDir);
    this.stopping = false;
    const pid = this.runner.start({
      python,
      dataDir,
      port,
      serverArgs: settings.serverArgs,
      corsOrigins,
      parentPid: process.pid,
      cwd: this.workspaceFolder(),
      env: process.env,
    });
    this.log.info(`started storykit-watchdog (pid ${pid}) for ${serverUrl}, data in ${dataDir}`);
    this.watcher?.refresh();
  }

  private async resolveOrExplain(): Promise<Resolved | undefined> {
    try {
      return await this.resolve();
    } catch (err) {
      if (!(err instanceof PythonError)) throw err;
      this.log.error(err.message);
      const actions = err.fix ? ["Copy install command", "Open settings"] : ["Open settings"];
      const choice = await vscode.window.showErrorMessage(err.message, ...actions);
      if (choice === "Copy install command" && err.fix) await vscode.env.clipboard.writeText(err.fix);
      if (choice === "Open settings") await vscode.commands.executeCommand("workbench.action.openSettings", "storykit.pythonPath");
      return undefined;
    }
  }

  private async choosePort(setting: number): Promise<number | undefined> {
    if (setting === 0) return freePort();
    if (await portFree(setting)) return setting;
    const next = await nextFreePort(setting);
    const use = next === undefined ? undefined : `Use port ${next}`;
    const choice = await vscode.window.showWarningMessage(
      `storykit: port ${setting} on ${HOST} is already in use by another program.`,
      ...(use ? [use] : []),
      "Open settings",
    );
    if (choice === use && next !== undefined) return next;
    if (choice === "Open settings") await vscode.commands.executeCommand("workbench.action.openSettings", "storykit.port");
    return undefined;
  }

  /** Copy the server's own log into the output channel, keys masked. */
  private startTail(dataDir: string): void {
    this.tail?.dispose();
    let keyKnown = false;
    this.tail = new LogTail(watchdogPaths(dataDir).serverLog, {
      onLine: (line) => {
        // The server writes a key it generates to DATA_DIR/api-key before printing it.
        if (!keyKnown) {
          const key = readGeneratedKey(dataDir);
          this.log.addSecret(key);
          keyKnown = key !== undefined;
        }
        this.log.info(`[server] ${line}`);
      },
    });
  }

  private watchdogExited(code: number | null, signal: NodeJS.Signals | null): void {
    this.log.info(`storykit-watchdog exited (${signal ? `signal ${signal}` : `code ${code}`})`);
    this.tail?.dispose();
    this.tail = undefined;
    this.watcher?.refresh();
    if (this.stopping || code === 0) return;
    if (code === 2) {
      void vscode.window.showInformationMessage("storykit: another window already runs the server for this workspace; using it.");
      return;
    }
    void this.fail(`the storykit watchdog exited with ${signal ? `signal ${signal}` : `code ${code}`}.`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.runner.pid !== undefined) {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: "Stopping storykit…" },
        () => this.runner.stop(this.deps.stopTimeoutMs),
      );
      if (!result.graceful) this.log.warn(`the watchdog did not stop in time; killed process groups ${result.killed.join(", ")}`);
      this.watcher?.refresh();
      return;
    }
    const dataDir = this.watcher?.dataDir;
    if (!dataDir || !isActive(effectiveState(this.watcher?.refresh()))) {
      void vscode.window.showInformationMessage("storykit is not running.");
      return;
    }
    // Started by another window (or by hand): ask it to stop through the stop-file.
    requestStop(dataDir);
    const stopped = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: "Stopping storykit…" },
      () => waitStopped(dataDir, 15_000),
    );
    this.watcher?.refresh();
    if (!stopped) void this.fail("the storykit watchdog did not stop within 15 s.");
  }

  async openDashboard(): Promise<void> {
    if (!isActive(effectiveState(this.watcher?.refresh()))) {
      await this.start();
      if (!isActive(effectiveState(this.watcher?.refresh())) && this.runner.pid === undefined) return; // start said why
    }
    const url = await this.waitRunning();
    if (!url) return;
    if (this.panel) {
      await this.panel.load(url);
      this.panel.reveal();
      return;
    }
    this.panel = await DashboardPanel.open(
      {
        extensionUri: this.context.extensionUri,
        serverUrl: url,
        host: {
          log: this.log,
          getKey: () => this.keys.get(),
          onNoKey: () => void this.askForKey("storykit: no API key is stored yet. Set one to use the dashboard."),
          onAuthFailed: (detail) => void this.keyRefused(detail),
        },
      },
      () => (this.panel = undefined),
    );
  }

  /** The server's URL once it is running; undefined if it fails or the user cancels. */
  private async waitRunning(): Promise<string | undefined> {
    const current = () => {
      const status = this.watcher?.refresh();
      return { status, state: effectiveState(status) };
    };
    let cancelled = false;
    if (current().state !== "running") {
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "Starting storykit…", cancellable: true },
        (_progress, token) =>
          pollUntil(() => {
            cancelled = token.isCancellationRequested;
            const { state } = current();
            // "stopped" while our watchdog runs is the previous run's status: keep waiting.
            return cancelled || state === "running" || state === "failed" || (state === "stopped" && this.runner.pid === undefined);
          }, START_TIMEOUT_MS, 200),
      );
    }
    const { status, state } = current();
    if (state === "running" && status?.url) return status.url;
    if (cancelled) return undefined;
    if (state === "failed") await this.fail("the storykit server failed to start; the logs say why.");
    else if (this.runner.pid !== undefined) await this.fail("the storykit server did not become ready within a minute.");
    return undefined; // the watchdog exited: watchdogExited() has said so
  }

  async setApiKey(): Promise<void> {
    const value = await vscode.window.showInputBox({
      title: "storykit API key",
      prompt: "The key the dashboard sends as X-API-Key. It is kept in VS Code's secret storage. Leave empty to remove it.",
      password: true,
      ignoreFocusOut: true,
      validateInput: validateKey,
    });
    if (value === undefined) return;
    if (!value.trim()) {
      await this.keys.clear();
      void vscode.window.showInformationMessage("storykit: the API key was removed.");
      return;
    }
    await this.keys.set(value);
    void vscode.window.showInformationMessage("storykit: API key saved in VS Code's secret storage.");
  }

  private async askForKey(message: string, ...extra: string[]): Promise<string | undefined> {
    const choice = await vscode.window.showWarningMessage(message, "Set API key", ...extra);
    if (choice === "Set API key") await this.setApiKey();
    return choice;
  }

  private async keyRefused(detail: string): Promise<void> {
    const dataDir = this.watcher?.dataDir;
    const generated = dataDir ? readGeneratedKey(dataDir) : undefined;
    const stored = await this.keys.get();
    const offer = generated && generated !== stored ? ["Use the server's generated key"] : [];
    const choice = await this.askForKey(`storykit: the server refused the API key (${detail}).`, ...offer);
    if (choice === offer[0] && generated) await this.keys.set(generated);
  }

  /**
   * First run: with no key stored and no API_TOKENS, the server made an admin key in
   * DATA_DIR/api-key. Take it into secret storage, and say so.
   */
  private async importGeneratedKey(): Promise<void> {
    const dataDir = this.watcher?.dataDir;
    if (this.importing || !dataDir || process.env["API_TOKENS"]) return;
    this.importing = true;
    try {
      if (await this.keys.get()) return;
      const key = readGeneratedKey(dataDir);
      if (!key) return;
      this.log.addSecret(key);
      await this.keys.set(key);
      this.log.info(`using the admin key the server generated (${watchdogPaths(dataDir).apiKey})`);
      void vscode.window.showInformationMessage(
        `storykit: using the admin key the server generated in ${watchdogPaths(dataDir).apiKey}. ` +
          `It is now kept in VS Code's secret storage; "storykit: Set API key" changes it.`,
      );
    } finally {
      this.importing = false;
    }
  }

  private async settingsChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    const relevant = ["pythonPath", "port", "dataDir", "serverArgs", "corsOrigins"].some((name) =>
      event.affectsConfiguration(`storykit.${name}`),
    );
    if (!relevant) return;
    if (this.runner.pid === undefined) {
      await this.attach(); // follow the right data directory
      return;
    }
    const policy = this.settings().restartOnSettingsChange;
    if (policy === "never") return;
    if (policy === "ask") {
      const choice = await vscode.window.showInformationMessage("storykit settings changed. Restart the server to apply them?", "Restart");
      if (choice !== "Restart") return;
    }
    await this.stop();
    await this.start();
  }

  private async offerSettings(message: string): Promise<void> {
    this.log.error(message);
    const choice = await vscode.window.showErrorMessage(message, "Open settings");
    if (choice === "Open settings") await vscode.commands.executeCommand("workbench.action.openSettings", "storykit");
  }

  private async fail(message: string): Promise<void> {
    this.log.error(message);
    const choice = await vscode.window.showErrorMessage(`storykit: ${message}`, "Show logs");
    if (choice === "Show logs") this.log.show();
  }

  /** Deactivation: stop what we started, within a few seconds. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.runner.pid !== undefined) await this.runner.stop(this.deps.stopTimeoutMs);
    this.dispose();
  }

  dispose(): void {
    this.panel?.dispose();
    this.watcher?.dispose();
    this.tail?.dispose();
    this.disposables.forEach((d) => d.dispose());
    this.disposables.length = 0;
  }
}

let controller: Controller | undefined;

export function activate(
  context: vscode.ExtensionContext,
  deps: Dependencies = { processes: realProcesses, runPython: runFile, stopTimeoutMs: STOP_TIMEOUT_MS },
): void {
  controller = new Controller(context, deps);
  controller.register();
  context.subscriptions.push(controller);
  void controller.attach();
}

export async function deactivate(): Promise<void> {
  const current = controller;
  controller = undefined;
  await current?.shutdown();
}
