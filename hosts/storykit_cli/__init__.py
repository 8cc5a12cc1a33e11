"""The storykit command line: ``storykit`` (see :mod:`storykit_cli.main`)."""

from __future__ import annotations

__all__: list[str] = []
