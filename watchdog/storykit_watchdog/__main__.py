"""``python -m storykit_watchdog`` is the same as ``storykit-watchdog``."""

from __future__ import annotations

from storykit_watchdog.cli import main

if __name__ == "__main__":
    main()
