"""storykit: a review gate between machines that propose code changes and people who own it."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
