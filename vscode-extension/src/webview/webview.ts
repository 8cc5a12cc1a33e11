// Runs inside the webview. It holds no state of its own: it loads the dashboard into the
// iframe and passes messages between the extension and the dashboard
// (protocol: docs/dashboard.md in the storykit repository).
//
// Only two parties are listened to: the extension (messages from the webview's host
// frame, at our own origin) and the dashboard (from the iframe's window, at the
// dashboard's origin). The key is
// posted to the dashboard's origin only, so it cannot reach a page the iframe was
// navigated to elsewhere.

interface VsCodeApi {
  postMessage(message: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const frame = document.getElementById("storykit-dashboard") as HTMLIFrameElement;
const dashboardOrigin = frame.dataset["origin"] ?? "";

function theme(): "light" | "dark" {
  const classes = document.body.classList;
  return classes.contains("vscode-light") || classes.contains("vscode-high-contrast-light") ? "light" : "dark";
}

function toDashboard(message: Record<string, unknown>): void {
  frame.contentWindow?.postMessage(message, dashboardOrigin);
}

function fromExtension(data: unknown): void {
  if (!data || typeof data !== "object") return;
  const message = data as { type?: unknown; key?: unknown; apiBase?: unknown };
  if (message.type === "key" && typeof message.key === "string") {
    toDashboard({ type: "storykit.key", key: message.key, apiBase: message.apiBase, theme: theme() });
  } else if (message.type === "clear") {
    toDashboard({ type: "storykit.clear" });
  }
}

function fromDashboard(data: unknown): void {
  if (!data || typeof data !== "object") return;
  const message = data as { type?: unknown; version?: unknown; detail?: unknown; state?: unknown };
  const text = (value: unknown) => (typeof value === "string" ? value : "");
  switch (message.type) {
    case "storykit.ready":
      vscode.postMessage({ type: "ready", version: text(message.version) });
      break;
    case "storykit.auth-failed":
      vscode.postMessage({ type: "auth-failed", detail: text(message.detail) });
      break;
    case "storykit.state":
      vscode.postMessage({ type: "state", state: text(message.state), detail: text(message.detail) });
      break;
  }
}

window.addEventListener("message", (event: MessageEvent) => {
  if (frame.contentWindow && event.source === frame.contentWindow) {
    if (event.origin === dashboardOrigin) fromDashboard(event.data);
  } else if (event.origin === location.origin) {
    // VS Code delivers the extension's messages from the webview's host frame, which has
    // our origin. (It also deletes window.parent in webviews, so we cannot compare with it.)
    fromExtension(event.data);
  }
});

// A theme change: ask for the key again, which re-sends it with the new theme.
new MutationObserver(() => vscode.postMessage({ type: "resend" })).observe(document.body, {
  attributes: true,
  attributeFilter: ["class"],
});

const url = new URL(frame.dataset["src"] ?? "about:blank");
if (location.origin && location.origin !== "null") url.searchParams.set("origins", location.origin);
frame.src = url.toString();
