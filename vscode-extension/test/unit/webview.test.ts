import * as assert from "node:assert/strict";
import { describe as group, test } from "node:test";

import { Log, type LogSink } from "../../src/log";
import { buildCsp, buildHtml, makeNonce, originOf, parseWebviewMessage, Relay, type ToWebview } from "../../src/webview";

const KEY = "sk-test-0123456789abcdef";

class Sink implements LogSink {
  readonly lines: string[] = [];
  info(message: string) {
    this.lines.push(message);
  }
  warn(message: string) {
    this.lines.push(message);
  }
  error(message: string) {
    this.lines.push(message);
  }
  show() {}
}

const parts = {
  nonce: "abc123",
  cspSource: "https://file+.vscode-resource.vscode-cdn.net",
  dashboardOrigin: "http://127.0.0.1:8001",
  scriptUri: "https://file+.vscode-resource.vscode-cdn.net/ext/dist/webview/webview.js",
  styleUri: "https://file+.vscode-resource.vscode-cdn.net/ext/dist/webview/webview.css",
  dashboardUrl: "http://127.0.0.1:8001/story/ui",
};

group("CSP", () => {
  test("allows the dashboard's origin and our nonce, nothing else", () => {
    assert.equal(
      buildCsp(parts),
      "default-src 'none'; frame-src http://127.0.0.1:8001; script-src 'nonce-abc123'; " +
        "style-src https://file+.vscode-resource.vscode-cdn.net 'nonce-abc123'; connect-src http://127.0.0.1:8001; " +
        "img-src https://file+.vscode-resource.vscode-cdn.net; base-uri 'none'; form-action 'none'",
    );
  });

  test("a proxied dashboard (code-server) is framed from code-server's origin", () => {
    assert.equal(originOf("https://ide.example.com/proxy/8001/"), "https://ide.example.com");
  });

  test("nonces are fresh and URL-safe", () => {
    const a = makeNonce();
    assert.match(a, /^[A-Za-z0-9_-]{24}$/);
    assert.notEqual(a, makeNonce());
  });
});

group("HTML", () => {
  const html = buildHtml(parts);

  test("carries the CSP, and the nonce on its script and stylesheet", () => {
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; frame-src http:\/\/127\.0\.0\.1:8001;/);
    assert.match(html, /<script nonce="abc123" src="https:\/\/file\+\.vscode-resource\.vscode-cdn\.net\/ext\/dist\/webview\/webview\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" href="[^"]+webview\.css" nonce="abc123">/);
  });

  test("no inline script, and the iframe's address is data for the script", () => {
    assert.equal((html.match(/<script/g) ?? []).length, 1);
    assert.doesNotMatch(html, /<script[^>]*>[^<]/);
    assert.match(html, /data-src="http:\/\/127\.0\.0\.1:8001\/story\/ui"/);
    assert.doesNotMatch(html, /<iframe[^>]*\ssrc=/);
  });

  test("escapes what it is given", () => {
    const odd = buildHtml({ ...parts, dashboardUrl: 'http://x/"><script>alert(1)</script>' });
    assert.doesNotMatch(odd, /<script>alert/);
  });
});

group("messages", () => {
  test("only known messages from the webview are accepted", () => {
    assert.deepEqual(parseWebviewMessage({ type: "ready", version: "0.1.0" }), { type: "ready", version: "0.1.0" });
    assert.deepEqual(parseWebviewMessage({ type: "auth-failed", detail: 7 }), { type: "auth-failed", detail: "" });
    assert.equal(parseWebviewMessage({ type: "key", key: "x" }), undefined);
    assert.equal(parseWebviewMessage("ready"), undefined);
    assert.equal(parseWebviewMessage(null), undefined);
  });
});

function makeRelay(key: string | undefined) {
  const sink = new Sink();
  const posted: ToWebview[] = [];
  const events: string[] = [];
  const relay = new Relay(
    {
      post: (message) => {
        posted.push(message);
        return Promise.resolve(true);
      },
      getKey: () => Promise.resolve(key),
      onNoKey: () => events.push("no key"),
      onAuthFailed: (detail) => events.push(`refused: ${detail}`),
      log: new Log(sink),
    },
    "http://127.0.0.1:8001",
  );
  return { relay, posted, events, sink };
}

group("Relay", () => {
  test("gives the key to the dashboard once it is ready, and never logs it", async () => {
    const { relay, posted, sink } = makeRelay(KEY);
    await relay.sendKey();
    assert.deepEqual(posted, [], "nothing is sent before the dashboard has loaded");
    await relay.handle({ type: "ready", version: "0.1.0" });
    await relay.handle({ type: "state", state: "live", detail: `key ${KEY}` });
    await relay.handle({ type: "resend" });
    assert.deepEqual(posted, [
      { type: "key", key: KEY, apiBase: "http://127.0.0.1:8001" },
      { type: "key", key: KEY, apiBase: "http://127.0.0.1:8001" },
    ]);
    assert.ok(sink.lines.length > 0);
    assert.ok(sink.lines.every((line) => !line.includes(KEY)), sink.lines.join("\n"));
  });

  test("without a key it clears the dashboard and asks the user", async () => {
    const { relay, posted, events } = makeRelay(undefined);
    await relay.handle({ type: "ready", version: "" });
    assert.deepEqual(posted, [{ type: "clear" }]);
    assert.deepEqual(events, ["no key"]);
  });

  test("a refused key is reported", async () => {
    const { relay, events } = makeRelay(KEY);
    await relay.handle({ type: "auth-failed", detail: "unknown key" });
    assert.deepEqual(events, ["refused: unknown key"]);
  });
});
