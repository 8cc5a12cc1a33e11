import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe as group, test } from "node:test";

import { checkServerArgs, expandPath, readSettings, SettingsError } from "../../src/config";
import { installCommand, probePython, PythonError, resolvePython, runFile, type Runner } from "../../src/python";
import { tempDir } from "./helpers";

group("resolvePython", () => {
  test("the setting wins", () => assert.equal(resolvePython("/opt/py/bin/python", "/ws", () => true), "/opt/py/bin/python"));
  test("then the workspace's .venv", () => assert.equal(resolvePython("", "/ws", (f) => f === "/ws/.venv/bin/python"), "/ws/.venv/bin/python"));
  test("then python3", () => assert.equal(resolvePython("", "/ws", () => false), "python3"));
});

const answer = (result: Awaited<ReturnType<Runner>>): Runner => () => Promise.resolve(result);

group("probePython", () => {
  test("returns the data directory the interpreter's storykit resolves", async () => {
    const calls: unknown[][] = [];
    const run: Runner = (file, args, options) => {
      calls.push([file, args.slice(2), options.cwd]);
      return Promise.resolve({ code: 0, stdout: '{"dataDir": "/home/me/.local/share/storykit/repos/x-1", "version": "0.1.0"}\n', stderr: "" });
    };
    assert.deepEqual(await probePython("/venv/bin/python", "", "/ws", run), {
      dataDir: "/home/me/.local/share/storykit/repos/x-1",
      version: "0.1.0",
    });
    assert.deepEqual(calls, [["/venv/bin/python", [""], "/ws"]]);
  });

  test("not installed: the message gives the install command", async () => {
    const err = await probePython("/usr/bin/python3", "", undefined, answer({ code: 3, stdout: '{"missing": "No module named storykit_watchdog"}', stderr: "" })).catch((e: unknown) => e);
    assert.ok(err instanceof PythonError);
    assert.equal(err.message, "storykit is not installed for /usr/bin/python3. Install it with: /usr/bin/python3 -m pip install storykit");
    assert.equal(err.fix, "/usr/bin/python3 -m pip install storykit");
  });

  test("no such interpreter", async () => {
    const missing = Object.assign(new Error("spawn nope ENOENT"), { code: "ENOENT" });
    const err = await probePython("nope", "", undefined, answer({ code: null, stdout: "", stderr: "", error: missing })).catch((e: unknown) => e);
    assert.ok(err instanceof PythonError);
    assert.match(err.message, /Python interpreter not found: nope/);
  });

  test("a real interpreter without storykit, through the real runner", async () => {
    // A stand-in "python" that behaves like one without the package (exit 3 from the probe).
    const fake = path.join(tempDir(), "python");
    fs.writeFileSync(fake, "#!/bin/sh\necho '{\"missing\": \"No module named storykit_watchdog\"}'\nexit 3\n", { mode: 0o755 });
    const err = await probePython(fake, "", undefined, runFile).catch((e: unknown) => e);
    assert.ok(err instanceof PythonError);
    assert.equal(err.fix, `${fake} -m pip install storykit`);
  });

  test("in a storykit checkout, the editable install", () => {
    const repo = tempDir();
    fs.writeFileSync(path.join(repo, "pyproject.toml"), '[project]\nname = "storykit"\n');
    assert.equal(installCommand("/ws/.venv/bin/python", repo), `/ws/.venv/bin/python -m pip install -e '${repo}'`);
    assert.equal(installCommand("/my python/bin/python", undefined), "'/my python/bin/python' -m pip install storykit");
  });
});

group("settings", () => {
  test("defaults and bad values", () => {
    const settings = readSettings({ get: () => undefined });
    assert.deepEqual(settings, { pythonPath: "", port: 8001, dataDir: "", serverArgs: [], corsOrigins: [], restartOnSettingsChange: "ask" });
    const odd = readSettings({ get: <T>(key: string) => ({ port: 70000, serverArgs: ["--worker", 3], restartOnSettingsChange: "sometimes" } as Record<string, unknown>)[key] as T });
    assert.equal(odd.port, 8001);
    assert.deepEqual(odd.serverArgs, ["--worker"]);
    assert.equal(odd.restartOnSettingsChange, "ask");
  });

  test("port 0 means pick one", () => assert.equal(readSettings({ get: <T>(key: string) => (key === "port" ? 0 : undefined) as T }).port, 0));

  test("serverArgs may not take over the port or the data directory", () => {
    assert.throws(() => checkServerArgs(["--port", "9"]), SettingsError);
    assert.throws(() => checkServerArgs(["--data-dir=/x"]), SettingsError);
    checkServerArgs(["--worker", "trio"]);
  });

  test("paths expand ~ and ${workspaceFolder}", () => {
    assert.equal(expandPath("~/py/bin/python", "/home/me", undefined), "/home/me/py/bin/python");
    assert.equal(expandPath("${workspaceFolder}/.venv/bin/python", "/home/me", "/ws"), "/ws/.venv/bin/python");
  });
});
