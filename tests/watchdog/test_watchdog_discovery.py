from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from storykit_watchdog.discovery import (
    Target,
    target_from_command,
    target_from_state_file,
    target_from_url,
)


@pytest.mark.parametrize(
    ("argv", "url"),
    [
        (["storykit", "serve", "--host", "127.0.0.1", "--port", "8001"], "http://127.0.0.1:8001"),
        (["storykit", "serve", "--port=8003"], "http://127.0.0.1:8003"),
        (["storykit", "serve", "-p", "9000"], "http://127.0.0.1:9000"),
        (["storykit", "serve", "-p9001"], "http://127.0.0.1:9001"),
        (["storykit", "serve", "--host=localhost", "-p", "80"], "http://localhost:80"),
        (["storykit", "serve", "--host", "0.0.0.0", "--port", "8001"], "http://127.0.0.1:8001"),
        (["hypercorn", "--bind", "0.0.0.0:8080", "app:app"], "http://127.0.0.1:8080"),
        (["hypercorn", "--bind=[::1]:8081", "app:app"], "http://[::1]:8081"),
        (["hypercorn", "--bind", "[::]:8082", "app:app"], "http://[::1]:8082"),
        (["x", "--bind", "10.0.0.5", "--port", "7000"], "http://10.0.0.5:7000"),
        (["x", "--port", "1", "--port", "2"], "http://127.0.0.1:2"),
    ],
)
def test_target_from_command(argv: list[str], url: str) -> None:
    target = target_from_command(argv)
    assert target is not None
    assert target.url == url
    assert target.health_url == url + "/health"


@pytest.mark.parametrize(
    "argv",
    [
        ["storykit", "serve"],
        ["storykit", "serve", "--host", "127.0.0.1"],
        ["storykit", "serve", "--port", "0"],
        ["storykit", "serve", "--port", "99999"],
        ["storykit", "serve", "--port"],
        ["hypercorn", "--bind", "unix:/tmp/s.sock"],
        ["python", "-b", "-m", "storykit_cli", "serve"],
    ],
)
def test_no_target_from_command(argv: list[str]) -> None:
    assert target_from_command(argv) is None


def test_target_from_url_keeps_the_path() -> None:
    t = target_from_url("https://example.test/api/health?deep=1")
    assert (t.scheme, t.host, t.port) == ("https", "example.test", 443)
    assert t.url == "https://example.test:443"
    assert t.health_url == "https://example.test:443/api/health?deep=1"


def test_target_from_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="http"):
        target_from_url("ftp://example.test/")


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_state_file_of_our_child(tmp_path: Path) -> None:
    # This test process stands in for the child: its pid is in its own process group.
    f = write(tmp_path / "server.json", {"pid": os.getpid(), "host": "0.0.0.0", "port": 8011})
    t = target_from_state_file(f, pgid=os.getpgid(0), since=0)
    assert t == Target(host="127.0.0.1", port=8011)


def test_state_file_url_wins(tmp_path: Path) -> None:
    data = {"pid": os.getpid(), "host": "x", "port": 1, "url": "http://127.0.0.1:8012"}
    t = target_from_state_file(write(tmp_path / "s.json", data), pgid=os.getpgid(0), since=0)
    assert t is not None
    assert t.health_url == "http://127.0.0.1:8012/health"


def test_state_file_of_another_process_is_ignored(tmp_path: Path) -> None:
    f = write(tmp_path / "server.json", {"pid": os.getpid(), "host": "127.0.0.1", "port": 8013})
    assert target_from_state_file(f, pgid=os.getpgid(0) + 1, since=0) is None
    assert target_from_state_file(f, pgid=None, since=0) is None


def test_state_file_without_pid_must_be_fresh(tmp_path: Path) -> None:
    f = write(tmp_path / "server.json", {"host": "127.0.0.1", "port": 8014})
    assert target_from_state_file(f, pgid=None, since=0) == Target(host="127.0.0.1", port=8014)
    assert target_from_state_file(f, pgid=None, since=time.time() + 60) is None


@pytest.mark.parametrize("content", ["", "not json", "[1]", '{"port": "8001"}', '{"port": 0}'])
def test_bad_state_files(tmp_path: Path, content: str) -> None:
    f = tmp_path / "server.json"
    f.write_text(content)
    assert target_from_state_file(f, pgid=None, since=0) is None


def test_missing_state_file(tmp_path: Path) -> None:
    assert target_from_state_file(tmp_path / "nope.json", pgid=None, since=0) is None
