// The dashboard panel: a webview whose only content is an iframe on the server's
// /story/ui page, plus a small script (src/webview/main.ts) that passes messages between
// the extension and the dashboard.
//
// The key travels extension → webview script → dashboard by postMessage, addressed to the
// dashboard's origin. It is never part of the HTML or a URL, so it cannot end up in
// history, logs, or a Referer header.

import { randomBytes } from "node:crypto";

import * as vscode from "vscode";

import type { Log } from "./log";

export function makeNonce(): string {
  return randomBytes(18).toString("base64url");
}

/** `scheme://host[:port]` of a URL. */
export function originOf(url: string): string {
  return new URL(url).origin;
}

export interface CspParts {
  nonce: string;
  /** webview.cspSource: where asWebviewUri resources are served from. */
  cspSource: string;
  dashboardOrigin: string;
}

export function buildCsp({ nonce, cspSource, dashboardOrigin }: CspParts): string {
  return [
    "default-src 'none'",
    `frame-src ${dashboardOrigin}`,
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `connect-src ${dashboardOrigin}`,
    `img-src ${cspSource}`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
}

const escapeAttr = (value: string) =>
  value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export interface HtmlParts extends CspParts {
  scriptUri: string;
  styleUri: string;
  /** The dashboard page, as the browser must load it (after asExternalUri). */
  dashboardUrl: string;
}

/**
 * The webview document. The iframe has no src here: the script sets it, adding the
 * webview's own origin as `?origins=` so the dashboard accepts messages from us only.
 */
export function buildHtml(parts: HtmlParts): string {
  const { nonce } = parts;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttr(buildCsp(parts))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${escapeAttr(parts.styleUri)}" nonce="${nonce}">
<title>storykit</title>
</head>
<body>
<iframe id="storykit-dashboard" title="storykit dashboard"
  data-src="${escapeAttr(parts.dashboardUrl)}" data-origin="${escapeAttr(parts.dashboardOrigin)}"
  sandbox="allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox"></iframe>
<script nonce="${nonce}" src="${escapeAttr(parts.scriptUri)}"></script>
</body>
</html>`;
}

/** Messages from the webview script (which relays the dashboard's). */
export type FromWebview =
  | { type: "ready"; version: string }
  | { type: "resend" }
  | { type: "auth-failed"; detail: string }
  | { type: "state"; state: string; detail: string };

/** Messages to the webview script. */
export type ToWebview = { type: "key"; key: string; apiBase: string } | { type: "clear" };

export function parseWebviewMessage(raw: unknown): FromWebview | undefined {
  if (!raw || typeof raw !== "object") return undefined;
  const m = raw as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === "string" ? value.slice(0, 500) : "");
  switch (m["type"]) {
    case "ready":
      return { type: "ready", version: text(m["version"]) };
    case "resend":
      return { type: "resend" };
    case "auth-failed":
      return { type: "auth-failed", detail: text(m["detail"]) };
    case "state":
      return { type: "state", state: text(m["state"]), detail: text(m["detail"]) };
    default:
      return undefined;
  }
}

export interface RelayHost {
  post(message: ToWebview): Thenable<boolean>;
  getKey(): Promise<string | undefined>;
  /** The dashboard is up but we have no key to give it. */
  onNoKey(): void;
  /** The server refused the key we gave. */
  onAuthFailed(detail: string): void;
  log: Log;
}

/** Answers the webview's messages. Kept apart from the panel so it can be tested alone. */
export class Relay {
  private ready = false;

  constructor(
    private readonly host: RelayHost,
    private readonly apiBase: string,
  ) {}

  async handle(raw: unknown): Promise<void> {
    const message = parseWebviewMessage(raw);
    if (!message) return;
    switch (message.type) {
      case "ready":
        this.ready = true;
        this.host.log.info(`dashboard loaded (version ${message.version || "unknown"})`);
        await this.sendKey();
        return;
      case "resend":
        await this.sendKey();
        return;
      case "auth-failed":
        this.host.log.warn(`the dashboard reports the key was refused: ${message.detail}`);
        this.host.onAuthFailed(message.detail);
        return;
      case "state":
        // "live", "reconnecting", … — for the log only; the status bar follows the watchdog.
        this.host.log.info(`dashboard: ${message.state}${message.detail ? ` (${message.detail})` : ""}`);
        return;
    }
  }

  /** Give the dashboard the current key (after a change, or when it asks). */
  async sendKey(): Promise<void> {
    if (!this.ready) return; // it asks when it has loaded
    const key = await this.host.getKey();
    if (!key) {
      await this.host.post({ type: "clear" });
      this.host.onNoKey();
      return;
    }
    this.host.log.addSecret(key);
    await this.host.post({ type: "key", key, apiBase: this.apiBase });
  }
}

export interface PanelOptions {
  extensionUri: vscode.Uri;
  /** http://127.0.0.1:PORT/ as seen from the extension host. */
  serverUrl: string;
  host: Omit<RelayHost, "post">;
}

/** Where the webview script and stylesheet are: the only folder the webview may load from. */
export const WEBVIEW_ASSETS = ["dist", "webview"] as const;

export class DashboardPanel {
  private relay: Relay | undefined;
  private serverUrl = "";
  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly options: PanelOptions,
    private readonly onDispose: () => void,
  ) {
    this.disposables.push(
      panel.webview.onDidReceiveMessage((message: unknown) => {
        void this.relay?.handle(message);
      }),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  static async open(options: PanelOptions, onDispose: () => void): Promise<DashboardPanel> {
    const assets = vscode.Uri.joinPath(options.extensionUri, ...WEBVIEW_ASSETS);
    const port = Number(new URL(options.serverUrl).port);
    const panel = vscode.window.createWebviewPanel(
      "storykit.dashboard",
      "storykit",
      vscode.ViewColumn.Active,
      {
        enableScripts: true,
        // The dashboard holds a live connection and the reviewer's place; keep it when
        // the tab is in the background instead of reloading it each time.
        retainContextWhenHidden: true,
        localResourceRoots: [assets],
        // On the desktop the iframe loads localhost directly; map it to the extension
        // host's port (the same one, unless asExternalUri made a tunnel instead).
        portMapping: [{ webviewPort: port, extensionHostPort: port }],
      },
    );
    panel.iconPath = vscode.Uri.joinPath(options.extensionUri, "media", "icon.png");
    const view = new DashboardPanel(panel, options, onDispose);
    await view.load(options.serverUrl);
    return view;
  }

  reveal(): void {
    this.panel.reveal();
  }

  /** Point the panel at a server (again, if its address changed). */
  async load(serverUrl: string): Promise<void> {
    if (this.disposed || (serverUrl === this.serverUrl && this.relay)) return;
    this.serverUrl = serverUrl;
    // Remote windows and code-server: the browser reaches the server through a
    // forwarded port or code-server's /proxy/PORT/ path, which asExternalUri tells us.
    const external = (await vscode.env.asExternalUri(vscode.Uri.parse(serverUrl))).toString(true);
    const base = external.endsWith("/") ? external : `${external}/`;
    const apiBase = base.replace(/\/+$/, "");
    const webview = this.panel.webview;
    const assets = vscode.Uri.joinPath(this.options.extensionUri, ...WEBVIEW_ASSETS);
    this.relay = new Relay({ ...this.options.host, post: (message) => webview.postMessage(message) }, apiBase);
    this.options.host.log.info(`dashboard at ${base}story/ui`);
    webview.html = buildHtml({
      nonce: makeNonce(),
      cspSource: webview.cspSource,
      dashboardOrigin: originOf(base),
      dashboardUrl: `${base}story/ui`,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(assets, "webview.js")).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(assets, "webview.css")).toString(),
    });
  }

  /** The stored key changed: hand the new one over. */
  async keyChanged(): Promise<void> {
    await this.relay?.sendKey();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.relay = undefined;
    this.disposables.forEach((d) => d.dispose());
    this.panel.dispose();
    this.onDispose();
  }
}
