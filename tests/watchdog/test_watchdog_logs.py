from __future__ import annotations

import json
import logging
from pathlib import Path

from storykit_watchdog.logs import JsonFormatter, RotatingWriter


def test_rotating_writer_keeps_whole_lines_and_n_backups(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    writer = RotatingWriter(path, max_bytes=100, backups=2)
    lines = [f"line {n:03d} {'x' * 20}\n".encode() for n in range(40)]
    for line in lines:
        writer.write(line)
    writer.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["server.log", "server.log.1", "server.log.2"]
    kept = b"".join(
        (tmp_path / name).read_bytes() for name in ["server.log.2", "server.log.1", "server.log"]
    )
    assert kept == b"".join(lines[-len(kept.splitlines()) :])  # the newest lines, in order
    for name in files:
        assert len((tmp_path / name).read_bytes()) <= 100


def test_rotating_writer_without_backups_truncates(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    writer = RotatingWriter(path, max_bytes=10, backups=0)
    writer.write(b"0123456789\n")
    writer.write(b"abc\n")
    writer.close()
    assert path.read_bytes() == b"abc\n"
    assert [p.name for p in tmp_path.iterdir()] == ["server.log"]


def test_json_formatter_puts_fields_on_one_line() -> None:
    record = logging.LogRecord(
        "storykit_watchdog", logging.WARNING, __file__, 1, "child.exited", None, None
    )
    record.fields = {"pid": 7, "reason": "crashed"}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["event"] == "child.exited"
    assert data["level"] == "warning"
    assert data["pid"] == 7
    assert data["reason"] == "crashed"
    assert data["at"].endswith("Z")
