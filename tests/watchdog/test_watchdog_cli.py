from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from watchdog_helpers import watchdog_env

from storykit_watchdog.cli import _resolve_data_dir, cli
from storykit_watchdog.status import Status, write_status


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="storykit-watchdog")
    return result.exit_code, result.output


def test_help_lists_subcommands_and_examples() -> None:
    code, out = invoke("--help")
    assert code == 0
    for word in ("run", "status", "stop", "Examples:", "storykit-watchdog -- storykit serve"):
        assert word in out


def test_run_help_lists_every_option_with_its_default() -> None:
    code, out = invoke("run", "--help")
    assert code == 0
    for option in (
        "--data-dir", "--health-url", "--no-probe", "--probe-interval", "--probe-timeout",
        "--probe-failures", "--grace", "--backoff-initial", "--backoff-factor", "--backoff-max",
        "--stable-after", "--max-failures", "--failure-window", "--kill-timeout", "--parent-pid",
        "--log-max-bytes", "--log-backups",
    ):  # fmt: skip
        assert option in out
    assert "default: 5.0" in out
    assert "default: 10.0" in out


def test_status_without_a_status_file_exits_3(tmp_path: Path) -> None:
    code, _ = invoke("status", "--data-dir", str(tmp_path))
    assert code == 3


def test_status_of_a_dead_watchdog_is_not_running(tmp_path: Path) -> None:
    (tmp_path / "watchdog").mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_status(
        tmp_path / "watchdog" / "status.json",
        Status(state="running", watchdog_pid=dead.pid, pid=None),
    )
    code, out = invoke("status", "--data-dir", str(tmp_path))
    assert code == 3
    assert "stale" in out
    code, out = invoke("status", "--data-dir", str(tmp_path), "--json")
    assert code == 3
    assert json.loads(out)["watchdog_pid"] == dead.pid


def test_status_running_exits_0(tmp_path: Path) -> None:
    (tmp_path / "watchdog").mkdir()
    status = Status(state="running", watchdog_pid=os.getpid(), pid=1, port=8001)
    write_status(tmp_path / "watchdog" / "status.json", status)
    code, out = invoke("status", "--data-dir", str(tmp_path))
    assert code == 0
    assert "running" in out


def test_stop_when_nothing_runs(tmp_path: Path) -> None:
    code, out = invoke("stop", "--data-dir", str(tmp_path))
    assert code == 0
    assert "not running" in out
    assert not (tmp_path / "watchdog" / "stop").exists()


def test_subcommand_after_options_is_a_usage_error(tmp_path: Path) -> None:
    code, out = invoke("--data-dir", str(tmp_path), "status")
    assert code == 2
    assert "put 'status' first" in out


def test_bad_health_url_is_a_usage_error(tmp_path: Path) -> None:
    code, out = invoke("--data-dir", str(tmp_path), "--health-url", "ftp://x/", "--", "true")
    assert code == 2
    assert "http" in out


def test_unknown_option_is_an_error_not_part_of_the_command(tmp_path: Path) -> None:
    code, out = invoke("--data-dir", str(tmp_path), "--grace-period", "1", "--", "true")
    assert code == 2
    assert "No such option" in out


def test_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYKIT_DATA_DIR", str(tmp_path / "env"))
    assert _resolve_data_dir(str(tmp_path / "opt")) == tmp_path / "opt"
    assert _resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("STORYKIT_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert _resolve_data_dir(None).is_relative_to(tmp_path / "xdg" / "storykit")


def test_python_dash_m_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "storykit_watchdog", "--version"],
        env=watchdog_env(),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("storykit-watchdog, version ")


def test_docs_list_every_option_with_its_default() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "watchdog.md").read_text()
    rows = {
        line.split("`")[1].split()[0]: line
        for line in docs.splitlines()
        if line.startswith("| `--")
    }
    run = cli.commands["run"]
    for param in run.params:
        if not isinstance(param, click.Option):
            continue
        name = param.opts[0]
        assert name in rows, f"{name} is not documented in docs/watchdog.md"
        if isinstance(param.default, int | float) and not isinstance(param.default, bool):
            assert f"| {param.default} |" in rows[name], f"{name}: default is {param.default}"
