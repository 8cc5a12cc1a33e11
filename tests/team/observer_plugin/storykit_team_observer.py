"""A test-only observer: appends ``"<event id> <pid>\\n"`` for each event it is given
to the file ``STORYKIT_TEAM_OBSERVER_FILE`` names (O_APPEND, one write per line, so
replicas sharing the file never interleave a line). Loaded by the team tests through
``PYTHONPATH`` (this directory, with its ``.dist-info`` entry point) and
``STORYKIT_LOAD_PLUGINS=team-observer``."""

from __future__ import annotations

import os

from storykit.hookspecs import hookimpl
from storykit.models import Event


@hookimpl
def storykit_on_event(event: Event) -> None:
    path = os.environ["STORYKIT_TEAM_OBSERVER_FILE"]
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{event.id} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
