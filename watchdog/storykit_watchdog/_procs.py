"""Process-group helpers: signal a group, and tell whether any live process is left in it."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

__all__ = ["group_alive", "signal_group"]


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """True while a process that is not a zombie is in group ``pgid``.

    Zombies are skipped: a grandchild that was re-parented to an init that is slow to
    reap (common in containers) holds nothing and must not delay a stop.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # After the parenthesised command name: state, ppid, pgrp, ...
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
