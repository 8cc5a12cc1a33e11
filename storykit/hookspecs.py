"""The hooks a storykit plugin can implement.

Discovery hooks are synchronous: they hand backend objects to ``register`` and
return nothing. The real work happens in the backends' ``async`` methods (see
:mod:`storykit.backends`), because pluggy itself is synchronous. No hook here is
``firstresult`` or a wrapper, so an implementation may be written either way.

Implementations run in pluggy's order: ``@hookimpl(tryfirst=True)`` ones first,
``@hookimpl(trylast=True)`` ones last, the others the plugin registered last first.
storykit calls each plugin's implementation through pluggy on its own, so pluggy's
tracing sees every call and one that raises is recorded as that plugin's error
while the others still run. A plugin implementing a hook not listed here (a
misspelt name) stops start-up with an error naming the plugin and the hook.

This module's docstrings are the hook reference: ``docs/plugins.md`` is
generated from them (``python -m storykit.docgen``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from storykit.backends import Planner, Policy, PRBackend, Refiner, SuggestionSource
from storykit.models import Event
from storykit.settings import Settings

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "storykit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def storykit_register_sources(
    register: Callable[[SuggestionSource], None], settings: Settings
) -> None:
    """Register suggestion sources.

    Called once when the plugin manager is set up. Call ``register(source)`` for each
    source the plugin offers (none if it is not configured). ``settings`` is the
    running :class:`~storykit.settings.Settings`; read your own options from
    ``settings.get("YOUR_OPTION")``.

    A source has a unique ``name`` and ``async def generate(request) -> [Draft]``.
    Sources from every plugin are combined; two sources with the same name are an
    error. A source that can also judge diffs others propose registers a policy for
    that (``storykit_register_policies``), as the ``ruff`` plugin does.

    Example::

        @hookimpl
        def storykit_register_sources(register, settings):
            register(TodoFinder())
    """


@hookspec
def storykit_register_refiners(register: Callable[[Refiner], None], settings: Settings) -> None:
    """Register refiners (an LLM that improves a suggestion from a reviewer's instructions).

    Called once at set-up. Call ``register(refiner)``; a refiner has a unique ``name``
    and ``async def refine(suggestion, instructions) -> Refinement``. Register nothing
    when unconfigured: ``/suggest/llm`` then answers that no refiner is configured.
    When several are registered, requests name one; the first registered is the default.

    Example::

        @hookimpl
        def storykit_register_refiners(register, settings):
            if os.environ.get("MY_LLM_URL"):
                register(MyRefiner(os.environ["MY_LLM_URL"]))
    """


@hookspec
def storykit_register_planners(register: Callable[[Planner], None], settings: Settings) -> None:
    """Register planners that turn a goal and approved suggestions into variants.

    Called once at set-up. A planner has a unique ``name`` and
    ``async def plan(goal, suggestions) -> [Variant]``. Every registered planner runs
    for each plan and their variants are concatenated; variant keys must be unique
    within a plan, so prefix them if you can clash.

    A planner groups and orders, it never authors content: it sets each variant's
    ``key``, ``title`` and ``suggestion_ids`` (in the order they should apply), taken
    only from the ``suggestions`` it was given. The core then derives the variant's
    ``diff`` from those suggestions' approved diffs (a later suggestion that collides
    with an earlier one is left out and listed in ``conflicts``), its ``risk`` and
    ``suggestion_hashes``; whatever the planner put there is ignored. A variant that
    names any other suggestion, names one twice, or reuses a key is refused as this
    plugin's error (502), and no plan is stored.

    Example::

        @hookimpl
        def storykit_register_planners(register, settings):
            register(OneBranchPerAuthor())
    """


@hookspec
def storykit_register_policies(register: Callable[[Policy], None], settings: Settings) -> None:
    """Register policies that screen every diff before a person sees it.

    Called once at set-up. A policy has a unique ``name``, ``default_config()``,
    ``validate_config(config)`` (raise ``Invalid`` to refuse a configuration when it is
    saved) and ``async def check(subject, config) -> [Finding]``. Its configuration is
    the section named after it in the policy document (``GET/PUT /policies``).

    Every diff is judged this one way: a submission, a revision, a refiner's version,
    a source's draft and ``POST /policies/check`` alike. ``subject.repo_path`` and
    ``subject.base_ref`` name the repository and the commit a diff from outside is
    made against, for a policy that checks it there (the ``ruff`` policy: does it
    apply, what does ruff say of the lines it adds); ``repo_path`` is ``None`` for a
    source's own drafts. Any
    admin edits that document at run time, so a server it names or an environment
    variable it reads must be one the operator allowed: check them with
    ``settings.check_policy_url(url)`` and read with ``settings.policy_secret(name)``
    (``STORYKIT_POLICY_URLS``, ``STORYKIT_POLICY_SECRETS``), when saved and at each check.

    Results combine as "any deny wins": a ``deny`` finding from any policy blocks the
    suggestion; otherwise any ``warn`` makes the decision ``warn``. A policy that
    raises or times out adds a ``warn`` finding naming it and makes the risk ``unknown``.

    Example::

        @hookimpl
        def storykit_register_policies(register, settings):
            register(NoFixmePolicy())
    """


@hookspec
def storykit_register_pr_backends(
    register: Callable[[PRBackend], None], settings: Settings
) -> None:
    """Register PR backends that turn a selected variant into a branch or pull request.

    Called once at set-up. A backend has a unique ``name``, a ``capabilities``
    frozenset and ``async def open(request) -> PRResult``. A dry run always uses the
    ``dry-run`` backend; a real run uses the one named by the ``PR_BACKEND`` setting.

    ``request.variant.diff`` is exactly the approved work, as the core verified it just
    before the call: commit it as it is and return it unchanged as ``PRResult.diff``.
    A result with any other diff, or a real run answered with ``dry_run=True``, is
    refused as this plugin's error (502) and the run is not recorded. While
    ``PR_BACKEND`` is ``dry-run`` the core refuses real runs itself (503).

    ``request.branch_given`` is True when the person chose ``request.branch``: use it
    exactly, or raise ``Conflict`` if it exists. Otherwise it is storykit's default name,
    which a backend may suffix when it is taken; return the branch it used.

    Example::

        @hookimpl
        def storykit_register_pr_backends(register, settings):
            register(GiteaBackend(settings))
    """


@hookspec
def storykit_on_event(event: Event) -> Any:
    """Observe every event after it is stored.

    Called once per event, in id order, by one of the processes that run observers
    (the server; any one replica of a team), whichever process wrote the event
    (:mod:`storykit.observers`). Return nothing, or an awaitable (an ``async def``
    implementation) which storykit awaits with a timeout. Results are ignored; an
    observer that raises is logged and counted as a plugin error and never affects the
    change that caused the event.

    Example::

        @hookimpl
        async def storykit_on_event(event):
            if event.type == "suggest.reviewed":
                await notify_chat(event.data)
    """
