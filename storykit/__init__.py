"""storykit: a review gate between machines that propose code changes and people who own it.

What a plugin author needs is importable from here::

    from storykit import Finding, Invalid, Outcome, hookimpl

Everything else lives in its module (``storykit.backends``, ``storykit.models``,
``storykit.errors``, ``storykit.testing``…); see docs/plugins.md.
"""

from __future__ import annotations

from storykit.backends import Draft, GenerateRequest, PolicySubject, PRRequest, Refinement
from storykit.errors import BackendError, Invalid, NotConfigured, PluginError, StorykitError
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome, PRResult, Risk, Suggestion, Variant
from storykit.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "Draft",
    "Finding",
    "GenerateRequest",
    "Invalid",
    "NotConfigured",
    "Outcome",
    "PRRequest",
    "PRResult",
    "PluginError",
    "PolicySubject",
    "Refinement",
    "Risk",
    "Settings",
    "StorykitError",
    "Suggestion",
    "Variant",
    "__version__",
    "hookimpl",
]
