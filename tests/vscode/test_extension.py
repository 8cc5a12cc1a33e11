"""The VS Code extension (vscode-extension/), built and tested with its own tools.

Each step is the npm script a developer runs, as a subprocess in vscode-extension/:
``npm ci``, ``npm run build``, ``npm test`` (unit tests against a stand-in VS Code API),
``npm run package`` (the .vsix, whose contents are checked here) and ``npm run e2e``
(the .vsix installed into a real code-server, driven in Chromium). A failure shows the
tool's output. Without node and npm the tests skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from storykit.testing import tool_missing

pytestmark = pytest.mark.slow

EXTENSION = Path(__file__).resolve().parents[2] / "vscode-extension"
VSIX = EXTENSION / "storykit.vsix"
OUTPUT_TAIL = 20_000

# Everything the .vsix may hold: the manifest, the bundle, the webview's two files, the
# icon, the README and the licence. Anything else is a .vscodeignore mistake.
VSIX_FILES = {
    "[Content_Types].xml",
    "extension.vsixmanifest",
    "extension/package.json",
    "extension/readme.md",
    "extension/LICENSE.txt",
    "extension/media/icon.png",
    "extension/dist/extension.js",
    "extension/dist/webview/webview.js",
    "extension/dist/webview/webview.css",
}


def _require_node() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        tool_missing(
            f"{' and '.join(missing)} not found: the VS Code extension needs Node.js 20 and npm"
        )


def npm(*args: str, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run npm in vscode-extension/; fail with its output if it fails."""
    command = ["npm", *args]
    try:
        done = subprocess.run(
            command,
            cwd=EXTENSION,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode()
        pytest.fail(
            f"{' '.join(command)} took more than {timeout:g} s:\n{output[-OUTPUT_TAIL:]}",
            pytrace=False,
        )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stdout[-OUTPUT_TAIL:]}",
            pytrace=False,
        )
    return done.stdout


@pytest.fixture(scope="module")
def installed() -> None:
    _require_node()
    npm("ci", "--no-fund", "--no-audit", timeout=900)


@pytest.fixture(scope="module")
def packaged(installed: None) -> Path:
    VSIX.unlink(missing_ok=True)
    npm("run", "package", timeout=600)
    assert VSIX.is_file(), f"npm run package made no {VSIX}"
    return VSIX


def test_build(installed: None) -> None:
    npm("run", "build", timeout=300)
    for built in ("dist/extension.js", "dist/webview/webview.js", "dist/webview/webview.css"):
        assert (EXTENSION / built).is_file(), built


def test_unit_tests(installed: None) -> None:
    output = npm("test", timeout=600)
    assert re.search(r"^\S+ fail 0$", output, re.MULTILINE), output[-OUTPUT_TAIL:]


def test_vsix_holds_only_what_runs(packaged: Path) -> None:
    with zipfile.ZipFile(packaged) as archive:
        names = set(archive.namelist())
        bundle = archive.read("extension/dist/extension.js").decode()
    assert names == VSIX_FILES, f"unexpected: {names - VSIX_FILES}, missing: {VSIX_FILES - names}"
    assert "sourceMappingURL" not in bundle, "the packaged bundle should have no source map"


def test_end_to_end_in_code_server(packaged: Path) -> None:
    # The interpreter running pytest has storykit installed: the server runs on it.
    output = npm("run", "e2e", timeout=1200, env={"STORYKIT_E2E_PYTHON": sys.executable})
    assert re.search(r"^\S+ pass 1$", output, re.MULTILINE), output[-OUTPUT_TAIL:]
