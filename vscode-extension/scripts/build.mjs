// Bundles the extension with esbuild. Type checking is `npm run typecheck` (tsc).
//
//   node scripts/build.mjs               dist/: the extension (Node) and the webview script (browser)
//   node scripts/build.mjs --production  the same, minified, without source maps (for the .vsix)
//   node scripts/build.mjs --tests       also out/test/: each unit test, with `vscode` → test/stub
//   node scripts/build.mjs --e2e         also out/e2e/: the end-to-end test driver

import { readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));
const production = args.has("--production");

const common = {
  absWorkingDir: root,
  bundle: true,
  logLevel: "warning",
  minify: production,
  sourcemap: production ? false : "linked",
  legalComments: "none",
};

rmSync(join(root, "dist"), { recursive: true, force: true });
const builds = [
  esbuild.build({
    ...common,
    entryPoints: ["src/extension.ts"],
    outfile: "dist/extension.js",
    platform: "node",
    target: "node20",
    format: "cjs",
    // Provided by VS Code at run time.
    external: ["vscode"],
  }),
  esbuild.build({
    ...common,
    entryPoints: ["src/webview/webview.ts", "src/webview/webview.css"],
    outdir: "dist/webview",
    entryNames: "[name]",
    platform: "browser",
    target: "es2022",
    format: "iife",
  }),
];

const testFiles = (folder, suffix) =>
  readdirSync(join(root, folder))
    .filter((name) => name.endsWith(suffix))
    .map((name) => join(folder, name));

if (args.has("--tests")) {
  rmSync(join(root, "out/test"), { recursive: true, force: true });
  builds.push(
    esbuild.build({
      ...common,
      sourcemap: "inline",
      entryPoints: testFiles("test/unit", ".test.ts"),
      outdir: "out/test",
      platform: "node",
      target: "node20",
      format: "cjs",
      // The unit tests run the extension against a stand-in for VS Code's API.
      alias: { vscode: "./test/stub/vscode.ts" },
    }),
  );
}

if (args.has("--e2e")) {
  rmSync(join(root, "out/e2e"), { recursive: true, force: true });
  builds.push(
    esbuild.build({
      ...common,
      sourcemap: "inline",
      entryPoints: testFiles("e2e", ".test.ts"),
      outdir: "out/e2e",
      platform: "node",
      target: "node20",
      format: "cjs",
      external: ["playwright-core"],
    }),
  );
}

await Promise.all(builds);
