"""``python -m storykit_cli``: the same as the ``storykit`` command."""

from __future__ import annotations

from storykit_cli.main import main

main()
