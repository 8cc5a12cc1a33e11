"""``storykit serve``: port conflicts, the generated key, the state file."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
from realserver import free_port, wait_healthy


def serve(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if k != "API_TOKENS"}
    full |= {
        "REPO_PATH": str(tmp_path),
        "STORYKIT_LOAD_PLUGINS": "",
        "LOG_FILE": str(tmp_path / "log"),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "storykit_cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        env=full | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_taken_port_is_named_with_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = serve(tmp_path, port)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use; use --port" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_without_api_tokens_a_key_is_made_once_kept_private_and_works(tmp_path: Path) -> None:
    port = free_port()
    proc = serve(tmp_path, port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", None)
        key_file = tmp_path / "d" / "api-key"
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        state = json.loads((tmp_path / "d" / "server.json").read_text())
        assert state == {
            "pid": proc.pid,
            "host": "127.0.0.1",
            "port": port,
            "url": f"http://127.0.0.1:{port}",
        }
        assert (
            httpx.get(f"http://127.0.0.1:{port}/plugins", headers={"X-API-Key": key}).status_code
            == 200
        )
        assert (
            httpx.get(
                f"http://127.0.0.1:{port}/plugins", headers={"X-API-Key": "x" * 10}
            ).status_code
            == 401
        )
    finally:
        proc.terminate()
        first_out, _ = proc.communicate(timeout=30)
    assert key in first_out
    assert "dashboard: http://localhost:" in first_out
    assert not (tmp_path / "d" / "server.json").exists()
    assert key not in (tmp_path / "log").read_text()

    proc = serve(tmp_path, port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", None)
    finally:
        proc.terminate()
        second_out, _ = proc.communicate(timeout=30)
    assert key not in second_out  # printed once, when it was made
    assert "using the admin key kept in" in second_out


def refused(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """What a server that must not start printed; it is killed if it started anyway."""
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the server started") from None
    assert proc.returncode != 0
    return out, err


def test_a_plugin_name_nothing_installed_has_stops_the_server_with_one_line(
    tmp_path: Path,
) -> None:
    out, err = refused(serve(tmp_path, free_port(), STORYKIT_LOAD_PLUGINS="todo-fixer,no-pint"))
    [line] = err.strip().splitlines()
    assert line.startswith("error: STORYKIT_LOAD_PLUGINS: no installed plugin is called")
    assert "'no-pint'" in line and "'todo-fixer'" in line and "dry-run" in line
    assert "dashboard" not in out


def test_a_malformed_api_tokens_entry_stops_the_server_and_never_shows_the_key(
    tmp_path: Path,
) -> None:
    key = "sk_Qm4Jt8Wz2Lx6Hc0Vb3Np"
    out, err = refused(serve(tmp_path, free_port(), API_TOKENS=f"alice=reviewer:{key}"))
    [line] = err.strip().splitlines()
    assert line.startswith("error: API_TOKENS: entry 1 ")
    assert key[3:] not in out + err
    assert "dashboard" not in out
