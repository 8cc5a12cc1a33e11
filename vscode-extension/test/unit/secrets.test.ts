import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe as group, test } from "node:test";

import { KeyStore, readGeneratedKey, validateKey } from "../../src/secrets";
import { FakeSecrets } from "../stub/vscode";
import { tempDir } from "./helpers";

group("KeyStore", () => {
  test("keeps the key in secret storage under one name, and says when it changes", async () => {
    const secrets = new FakeSecrets();
    const store = new KeyStore(secrets);
    const changes: (string | undefined)[] = [];
    store.onDidChange((key) => changes.push(key));
    assert.equal(await store.get(), undefined);
    await store.set("  sk-0123456789  ");
    assert.deepEqual([...secrets.values], [["storykit.apiKey", "sk-0123456789"]]);
    assert.equal(await store.get(), "sk-0123456789");
    await store.clear();
    assert.equal(await store.get(), undefined);
    assert.deepEqual(changes, ["sk-0123456789", undefined]);
  });
});

group("validateKey", () => {
  test("accepts a key, or nothing (to remove it)", () => {
    assert.equal(validateKey("sk-abc"), undefined);
    assert.equal(validateKey(""), undefined);
  });
  test("refuses what cannot be a key", () => {
    assert.match(validateKey("two words") ?? "", /no spaces/);
    assert.match(validateKey("a,b") ?? "", /no spaces or commas/);
    assert.match(validateKey("x".repeat(513)) ?? "", /at most 512/);
  });
});

group("readGeneratedKey", () => {
  test("reads DATA_DIR/api-key", () => {
    const dir = tempDir();
    assert.equal(readGeneratedKey(dir), undefined);
    fs.writeFileSync(path.join(dir, "api-key"), "sk-generated-123456\n");
    assert.equal(readGeneratedKey(dir), "sk-generated-123456");
    fs.writeFileSync(path.join(dir, "api-key"), "not a key\n");
    assert.equal(readGeneratedKey(dir), undefined);
  });
});
