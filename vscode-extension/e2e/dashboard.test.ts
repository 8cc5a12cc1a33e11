// End to end, in a real VS Code (code-server) driven by Chromium: install the .vsix,
// set a key, start the server from the command palette, open the dashboard, and see an
// agent's suggestion arrive in its live event list — three frames deep (VS Code's webview
// host, the webview, our dashboard iframe). Then stop, start again, and close the editor:
// nothing of storykit may be left running.
//
// Needs: storykit.vsix (npm run package), a Python with storykit (STORYKIT_E2E_PYTHON,
// default ../.venv/bin/python), Chromium (STORYKIT_E2E_CHROMIUM, default /usr/bin/chromium),
// and what e2e/install-code-server.sh needs the first time.

import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";

import { chromium, type Browser, type FrameLocator, type Page } from "playwright-core";

import { EXTENSION_ROOT, installCodeServer, installExtension, sandbox, startCodeServer, type Running } from "./codeServer";

const PYTHON = process.env["STORYKIT_E2E_PYTHON"] ?? path.resolve(EXTENSION_ROOT, "..", ".venv", "bin", "python");
const CHROMIUM = process.env["STORYKIT_E2E_CHROMIUM"] ?? "/usr/bin/chromium";
const VSIX = path.join(EXTENSION_ROOT, "storykit.vsix");
const STATUS_ITEM = '[id="storykit.storykit.storykit.status"]';

const AGENT_KEY = `sk-e2e-agent-${randomBytes(12).toString("hex")}`;
const REVIEWER_KEY = `sk-e2e-reviewer-${randomBytes(12).toString("hex")}`;

const root = fs.mkdtempSync(path.join(os.tmpdir(), "storykit-e2e-"));
const dataDir = path.join(root, "data");
const workspace = path.join(root, "workspace");
let codeServer: Running | undefined;
let browser: Browser | undefined;

after(async () => {
  await browser?.close().catch(() => undefined);
  await codeServer?.stop();
  // Whatever happened above, leave no watchdog behind (it follows the extension host out).
  const left = status()?.watchdog_pid;
  if (left) await waitFor(() => !running(left), 15_000, "the watchdog to exit").catch(() => process.kill(left, "SIGKILL"));
  if (!process.env["STORYKIT_E2E_KEEP"]) fs.rmSync(root, { recursive: true, force: true });
});

interface Status {
  state: string;
  watchdog_pid: number | null;
  pid: number | null;
  port: number | null;
}

function status(): Status | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, "watchdog", "status.json"), "utf8")) as Status;
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function waitFor<T>(check: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function command(page: Page, title: string): Promise<void> {
  // Keys go to whatever has focus, which may be the dashboard: give it to the workbench.
  await page.locator(".part.sidebar .composite.title").click();
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input.input");
  await input.waitFor();
  await input.fill(`>${title}`);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor();
  await page.keyboard.press("Enter");
}

async function statusBar(page: Page, text: string, timeout = 60_000): Promise<void> {
  await page.locator(STATUS_ITEM, { hasText: text }).waitFor({ timeout });
}

function dashboard(page: Page): FrameLocator {
  return page.frameLocator("iframe.webview.ready").frameLocator("#active-frame").frameLocator("#storykit-dashboard");
}

/** Every file under a folder whose text contains `needle`. */
function filesContaining(folder: string, needle: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(folder, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath ?? entry.path, entry.name);
    if (fs.readFileSync(file).includes(needle)) found.push(file);
  }
  return found;
}

test("the extension in code-server: start, dashboard, live events, stop", async (t) => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} is missing: run npm run package first`);
  assert.ok(fs.existsSync(PYTHON), `no Python with storykit at ${PYTHON}: set STORYKIT_E2E_PYTHON`);
  const clock = Date.now();
  const elapsed = () => `${((Date.now() - clock) / 1000).toFixed(1)} s`;
  let page: Page | undefined;
  const step = async (name: string, body: () => Promise<void>) => {
    const started = Date.now();
    await body();
    t.diagnostic(`${name}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  };

  try {
    const box = sandbox(path.join(root, "code-server"), {
      API_TOKENS: `e2e-agent:agent=${AGENT_KEY},e2e-reviewer:reviewer=${REVIEWER_KEY}`,
    });

    await step("install code-server (cached) and the .vsix", async () => {
      const entry = await installCodeServer();
      fs.mkdirSync(workspace, { recursive: true });
      fs.writeFileSync(path.join(workspace, "hello.py"), 'print("hello")\n');
      // storykit serves a git repository (it refuses to start on a plain folder).
      execFileSync("git", ["init", "-q", workspace]);
      fs.mkdirSync(path.join(box.userData, "User"), { recursive: true });
      fs.writeFileSync(
        path.join(box.userData, "User", "settings.json"),
        JSON.stringify({
          "storykit.pythonPath": PYTHON,
          "storykit.port": 0,
          "storykit.dataDir": dataDir,
          "workbench.startupEditor": "none",
          "workbench.tips.enabled": false,
          "security.workspace.trust.enabled": false,
          "telemetry.telemetryLevel": "off",
          "extensions.autoUpdate": false,
          "extensions.autoCheckUpdates": false,
          "extensions.ignoreRecommendations": true,
        }),
      );
      await installExtension(entry, box, VSIX);
      codeServer = await startCodeServer(entry, box, workspace);
      t.diagnostic(`code-server at ${codeServer.url} after ${elapsed()}`);
    });

    await step("open VS Code in Chromium", async () => {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        env: { ...process.env, HOME: path.join(root, "browser-home") },
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-dev-shm-usage",
          "--disable-background-networking",
          "--disable-component-update",
          "--no-first-run",
        ],
      });
      page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(`${codeServer!.url}/?folder=${encodeURIComponent(workspace)}`);
      await statusBar(page, "storykit: stopped");
      t.diagnostic(`workbench ready after ${elapsed()}`);
    });

    await step("set the reviewer key through the command", async () => {
      await command(page!, "storykit: Set API key");
      const input = page!.locator('.quick-input-widget input[type="password"]');
      await input.waitFor();
      await input.fill(REVIEWER_KEY);
      await page!.keyboard.press("Enter");
      await page!.locator(".notifications-toasts", { hasText: "API key saved" }).waitFor();
    });

    let first: Status | undefined;
    await step("start the server; the status bar follows the watchdog", async () => {
      await command(page!, "storykit: Start server");
      await statusBar(page!, "storykit: running");
      first = await waitFor(() => status()?.state === "running" && status(), 10_000, "the status file");
      // The watchdog watches the extension host, so it stops when the editor goes away.
      const cmdline = fs.readFileSync(`/proc/${first.watchdog_pid}/cmdline`, "utf8").split("\0");
      const parent = Number(cmdline[cmdline.indexOf("--parent-pid") + 1]);
      assert.match(fs.readFileSync(`/proc/${parent}/cmdline`, "utf8"), /extensionHost/);
      const environ = fs.readFileSync(`/proc/${first.pid}/environ`, "utf8").split("\0");
      const cors = environ.find((line) => line.startsWith("CORS_ORIGINS="));
      // The webviews' scheme, and code-server's own origin (its webviews and /proxy/ live there).
      assert.equal(cors, `CORS_ORIGINS=vscode-webview://*,${codeServer!.url}`);
      t.diagnostic(`server running on port ${first.port} after ${elapsed()}`);
    });

    await step("the dashboard works through code-server's port proxy", async () => {
      // What the webview loads: asExternalUri turns 127.0.0.1:PORT into code-server's
      // /proxy/PORT/ path, which strips the prefix. Two things the dashboard needs there,
      // checked here so that a failure says which one is missing.
      const page = `${codeServer!.url}/proxy/${first!.port}/story/ui`;
      const html = await (await fetch(page)).text();
      const href = /<link rel="stylesheet" href="([^"]+)"/.exec(html)?.[1] ?? "";
      const asset = await fetch(new URL(href, page));
      assert.equal(asset.status, 200, `the dashboard's stylesheet ${href} does not load through ${page}: its asset URLs must be relative`);
      const ticket = (await (
        await fetch(`${codeServer!.url}/proxy/${first!.port}/events/ticket`, { method: "POST", headers: { "X-API-Key": REVIEWER_KEY } })
      ).json()) as { ticket: string };
      const events = new AbortController();
      const stream = await fetch(`${codeServer!.url}/proxy/${first!.port}/events?ticket=${ticket.ticket}`, {
        headers: { "Accept-Encoding": "gzip" },
        signal: events.signal,
      });
      const timer = setTimeout(() => events.abort(), 5000);
      const chunk = await stream.body!.getReader().read().catch(() => undefined);
      clearTimeout(timer);
      events.abort();
      assert.ok(chunk?.value?.length, "no SSE data within 5 s through code-server's proxy: its gzip compression buffers the stream unless the server sends Cache-Control: no-transform");
    });

    await step("the dashboard connects with the key and shows live events", async () => {
      await command(page!, "storykit: Open dashboard");
      const board = dashboard(page!);
      await board.locator('#conn[data-state="live"]').waitFor({ timeout: 30_000 });
      await board.locator('.tabs a[data-view="system"]').click();
      await board.locator("ol.activity").waitFor();
      const title = `e2e suggestion ${randomBytes(4).toString("hex")}`;
      const response = await fetch(`http://127.0.0.1:${first!.port}/suggestions`, {
        method: "POST",
        headers: { "X-API-Key": AGENT_KEY, "Content-Type": "application/json" },
        body: JSON.stringify({
          title,
          rationale: "end-to-end test",
          diff: "--- a/hello.py\n+++ b/hello.py\n@@ -1 +1 @@\n-print(\"hello\")\n+print(\"hello, world\")\n",
        }),
      });
      assert.equal(response.status, 201, await response.text());
      await board.locator(".activity-item", { hasText: title }).filter({ hasText: "suggest.submitted" }).waitFor({ timeout: 15_000 });
      t.diagnostic(`event shown after ${elapsed()}`);
    });

    await step("the key is in no HTML, URL, log or setting", async () => {
      const frames = page!.frames();
      const webview = frames.find((frame) => frame.url().includes("/webview/browser/pre/fake.html"));
      assert.ok(webview, "no webview frame");
      assert.doesNotMatch(await webview.content(), new RegExp(REVIEWER_KEY));
      for (const frame of frames) assert.doesNotMatch(frame.url(), new RegExp(REVIEWER_KEY));
      for (const folder of [path.join(box.userData, "logs"), path.join(box.userData, "User"), dataDir]) {
        assert.deepEqual(filesContaining(folder, REVIEWER_KEY), [], `the key was written under ${folder}`);
      }
      // The channel really is there to look at: it has the server's log in it.
      assert.ok(filesContaining(path.join(box.userData, "logs"), "[server]").length > 0, "no storykit log found");
    });

    await step("stop: the watchdog and the server are gone", async () => {
      await command(page!, "storykit: Stop server");
      await statusBar(page!, "storykit: stopped", 15_000);
      await waitFor(() => !running(first!.watchdog_pid!) && !running(first!.pid!), 10_000, "the processes to end");
    });

    await step("closing the editor stops a running server", async () => {
      await command(page!, "storykit: Start server");
      await statusBar(page!, "storykit: running");
      const second = await waitFor(() => status()?.state === "running" && status()?.watchdog_pid !== first!.watchdog_pid && status(), 10_000, "the new status");
      await browser!.close();
      browser = undefined;
      await codeServer!.stop();
      await waitFor(() => !running(second.watchdog_pid!) && !running(second.pid!), 20_000, "the processes to end");
      assert.equal(status()?.state, "stopped");
      t.diagnostic(`done after ${elapsed()}`);
    });
  } catch (err) {
    if (page && !page.isClosed()) {
      const shot = path.join(EXTENSION_ROOT, "out", "e2e", "failure.png");
      await page.screenshot({ path: shot }).catch(() => undefined);
      t.diagnostic(`screenshot: ${shot}`);
    }
    if (codeServer) t.diagnostic(`code-server output:\n${codeServer.output().slice(-4000)}`);
    throw err;
  }
});
