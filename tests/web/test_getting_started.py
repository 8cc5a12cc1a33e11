"""docs/getting-started.md's first hour, run as written against a real server.

Every ```sh block of "The first hour" runs, in order, in one bash with ``set -euo
pipefail``, as a newcomer would type it in terminal 2; terminal 1 (``make serve``) is
the same ``storykit serve`` the Makefile runs. If the docs drift from the product, this
fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from realserver import free_port, wait_healthy

from storykit.paths import default_data_dir

DOC = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"
BIN = Path(sys.executable).parent
GIT_ID = {
    "GIT_AUTHOR_NAME": "Alice",
    "GIT_AUTHOR_EMAIL": "alice@example.invalid",
    "GIT_COMMITTER_NAME": "Alice",
    "GIT_COMMITTER_EMAIL": "alice@example.invalid",
}


def first_hour_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The first hour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_first_hour_works_as_written(tmp_path: Path) -> None:
    blocks = first_hour_blocks()
    assert len(blocks) >= 5, "the walk-through lost its steps"
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STORYKIT_", "API_TOKENS", "REPO_PATH", "XDG_", "PR_BACKEND"))
    }
    env |= GIT_ID | {"HOME": str(home), "PATH": f"{BIN}:{env.get('PATH', '')}"}

    step1 = bash(blocks[0], env)
    assert step1.returncode == 0, step1.stderr
    repo = home / "storykit-demo"

    # Terminal 1: REPO_PATH=~/storykit-demo PR_BACKEND=git make serve
    server_env = env | {"REPO_PATH": str(repo), "PR_BACKEND": "git"}
    log = tmp_path / "server.out"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(BIN / "storykit"), "serve", "--port", str(port)],
            env=server_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", None)
        data = default_data_dir(repo, {"XDG_DATA_HOME": str(home / ".local" / "share")})
        printed = log.read_text()
        you = (data / "api-key").read_text().strip()
        agent = (data / "agent-key").read_text().strip()
        assert you in printed and agent in printed  # the two keys step 3 tells you to keep

        # Terminal 2, with what step 3 exports.
        walk_env = env | {
            "STORYKIT_URL": f"http://127.0.0.1:{port}",
            "YOU": you,
            "AGENT": agent,
        }
        script = "\n".join(blocks[1:]).replace("127.0.0.1:8001", f"127.0.0.1:{port}")
        walk = bash(script, walk_env)
        assert walk.returncode == 0, f"stdout:\n{walk.stdout}\nstderr:\n{walk.stderr}"
    finally:
        server.terminate()
        server.wait(30)

    shown = subprocess.run(
        ["git", "-C", str(repo), "show", "fix-readme:README.md"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == "Hello, world!\n"
    assert (repo / "README.md").read_text() == "Hello, wrold!\n"  # the working tree untouched
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True
    )
    assert status.stdout == ""
