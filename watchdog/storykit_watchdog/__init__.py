"""storykit-watchdog: keeps the storykit server running.

It starts the server as a child process, restarts it when it exits or stops answering
its health probe (with exponential backoff), and stops it cleanly on request. Its state
is kept in ``DATA_DIR/watchdog/`` (``status.json``, ``lock``, ``stop``, ``server.log``).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
