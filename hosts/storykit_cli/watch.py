"""Following the event log and watching a run's progress, written once for every transport.

:func:`follow` turns a transport's live stream into every event after a point, in id
order, with none missed or repeated: it starts where the stream's :class:`Position`
says, reads what a full queue dropped back from the log, and after a lost stream
reconnects with the last id and the log's epoch. :func:`generate` runs the sources
while it follows, picking the run's id itself so that it shows this run's progress
and stops on this run's end, not on anyone else's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import anyio

from storykit.errors import StorykitError
from storykit_cli.transport import JSON, Client, Missed, Position, StreamLost, Transport

__all__ = ["Notice", "OnProgress", "follow", "generate", "replay", "reset_notice"]

Notice = Callable[[str], None]
OnProgress = Callable[[Mapping[str, Any]], None]
"""Called with each ``suggest.progress`` event's data of the run while it works."""

RECONNECT_FIRST = 0.2
RECONNECT_MOST = 5.0
# How long generate waits for the stream to say it is subscribed before it starts the
# run anyway (progress is a courtesy; the run is what was asked for) ...
SUBSCRIBE_WAIT = 5.0
# ... and, after the run answered, for its final event: only a bound for a stalled
# stream, never reached in practice (the run's own end comes after its last progress).
FINISH_WAIT = 2.0
_PAGE = 1000  # the log's largest page


def reset_notice(last: int | None, head: int) -> str:
    """What a follower says when the event log does not have the id it resumes from."""
    return (
        f"event {last} is not in the event log (its newest is {head}; a replaced or"
        " restored database?); following from there"
    )


async def replay(transport: Transport, *, after: int, until: int) -> AsyncIterator[JSON]:
    """Events ``after < id <= until`` from the stored log: what a full queue dropped."""
    cursor = after
    while cursor < until:
        page = (await transport.read_events(after=cursor, limit=_PAGE))["items"]
        if not page:
            return
        for event in page:
            if int(event["id"]) > until:
                return
            cursor = int(event["id"])
            yield event


async def follow(
    transport: Transport,
    *,
    after: int | None,
    on_notice: Notice | None = None,
    on_position: Callable[[Position], None] | None = None,
) -> AsyncGenerator[JSON, None]:
    """Every event after ``after`` (None: from now on), in id order, until cancelled.

    ``on_notice`` hears what the follower works around (a lost stream it is retrying, a
    resume point the log does not have); ``on_position`` each :class:`Position` a stream
    starts at (once subscribed, no later event is missed).
    """
    notice = on_notice or (lambda _message: None)
    last = after  # the newest id yielded; None: from the head the first Position names
    epoch: str | None = None  # the log `last` belongs to, once a stream said
    delay = RECONNECT_FIRST
    lost: str | None = None
    while True:
        try:
            async with transport.stream(after=last, epoch=epoch) as items:
                if lost is not None:
                    notice(f"reconnected to {transport.where}")
                    lost = None
                delay = RECONNECT_FIRST
                async for item in items:
                    if isinstance(item, Position):
                        epoch = item.epoch
                        if item.reset:
                            notice(reset_notice(last, item.head))
                        if item.reset or last is None:
                            last = item.head
                        if on_position is not None:
                            on_position(item)
                    elif isinstance(item, Missed):
                        start = last if last is not None else item.first_id - 1
                        async for missed in replay(transport, after=start, until=item.last_id):
                            last = int(missed["id"])
                            yield missed
                    elif last is None or int(item["id"]) > last:
                        last = int(item["id"])
                        yield item
            return  # the transport closed its stream: nothing more will come
        except StreamLost as exc:
            reason = exc.reason
        if lost is None:
            lost = reason
            notice(f"lost the event stream from {transport.where} ({reason}); reconnecting")
        await anyio.sleep(delay)
        delay = min(delay * 2, RECONNECT_MOST)


async def generate(
    client: Client,
    *,
    sources: Sequence[str] | None,
    paths: Sequence[str],
    on_progress: OnProgress | None,
    on_notice: Notice | None = None,
) -> JSON:
    """Run the sources; with ``on_progress``, show the run's progress while it works.

    The stream is subscribed before the run starts, so none of its events is missed;
    watching is best effort and never fails the command.
    """
    if on_progress is None:
        return await client.generate(sources=sources, paths=paths)
    from storykit.ids import new_id

    run = new_id("run")
    subscribed = anyio.Event()
    finished = anyio.Event()

    async def watch() -> None:
        try:
            events = follow(
                client, after=None, on_notice=on_notice, on_position=lambda _p: subscribed.set()
            )
            async with contextlib.aclosing(events):
                async for event in events:
                    data = event.get("data") or {}
                    if data.get("run") != run:
                        continue  # another run's, or no run's
                    if event.get("type") == "suggest.progress":
                        on_progress(data)
                    elif event.get("type") == "suggest.generated":
                        finished.set()
                        return
        except (StorykitError, ValueError, KeyError):
            # The stream was refused or spoke nonsense: the run still goes ahead, and its
            # reply is what the command prints.
            pass
        finally:
            subscribed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        with anyio.move_on_after(SUBSCRIBE_WAIT):
            await subscribed.wait()
        try:
            result = await client.generate(sources=sources, paths=paths, run=run)
            with anyio.move_on_after(FINISH_WAIT):
                await finished.wait()
        finally:
            tg.cancel_scope.cancel()
    return result
