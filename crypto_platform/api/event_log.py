"""Event ids and the recent events of the live push, so a client that reconnects resumes.

Every event gets an id, one more than the previous. The first id of a process is the
time it started in microseconds, so a restarted app's ids are all greater than the old
one's and an id from before the restart is never mistaken for a recent one. The newest
`size` events are kept: a reconnect with `Last-Event-ID: N` gets those after N, or a
`reset` event when some of them are gone (the client then reloads what it shows).
"""

from __future__ import annotations

import time
from collections import deque

from fastapi.sse import ServerSentEvent

__all__ = ["EventLog"]


class EventLog:
    """The ids issued so far and a ring buffer of the newest events."""

    def __init__(self, size: int) -> None:
        self._events: deque[ServerSentEvent] = deque(maxlen=size)
        self._next = time.time_ns() // 1000

    def stamp(self, event: ServerSentEvent) -> ServerSentEvent:
        """`event` with the next id, kept for clients that reconnect."""
        stamped = event.model_copy(update={"id": str(self._next)})
        self._next += 1
        self._events.append(stamped)
        return stamped

    def since(self, last_id: str) -> list[ServerSentEvent]:
        """The events after `last_id`; a single `reset` when they are not all here."""
        oldest = self._next - len(self._events)
        try:
            last = int(last_id)
        except ValueError:
            return [self._reset("not an event id of this stream")]
        if not oldest - 1 <= last < self._next:
            return [self._reset("events since that id are gone")]
        return list(self._events)[last - oldest + 1 :]

    def break_off(self) -> None:
        """Events went unseen (nobody polled): no id issued so far can resume any more."""
        self._events.clear()
        self._next += 1

    def _reset(self, why: str) -> ServerSentEvent:
        # The newest id, so a client that reloads and then drops again resumes from here.
        return ServerSentEvent(event="reset", id=str(self._next - 1), data={"reason": why})
