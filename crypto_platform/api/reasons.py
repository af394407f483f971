"""Short reasons for a backend failure, safe to show any client.

Driver errors name hosts and ports, and MongoDB's carry its whole topology: the API answers
with one of a few fixed phrases instead, classified from the error, and never echoes its
text. The full error stays in the server's log.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

__all__ = ["reason"]

REFUSED = ("connection refused",)
NAME_NOT_FOUND = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated",
)
UNRESOLVED = ("UnresolvableContactPoints",)  # Cassandra: no contact point resolved
UNREACHABLE = (
    "NoHostAvailable",
    "ConnectionFailure",
    "KafkaConnectionError",
    "BrokerNotAvailableError",
)


def reason(error: BaseException, *, timeout_s: float) -> str:
    """The phrase that fits `error` (`timeout_s`: the timeout the caller gave the driver).

    "authentication failed", "not reachable (connection refused)", "not reachable (host
    name not found)", "timed out after N s" (connecting or answering), "not reachable",
    or "failed (ErrorType)".
    """
    chain = list(_chain(error))
    names = {kind.__name__ for e in chain for kind in type(e).__mro__}
    text = " ".join(str(e) for e in chain).lower()
    if any("Authentication" in name for name in names) or "authentication failed" in text:
        return "authentication failed"
    if ConnectionRefusedError.__name__ in names or any(phrase in text for phrase in REFUSED):
        return "not reachable (connection refused)"
    if (
        socket.gaierror.__name__ in names
        or names.intersection(UNRESOLVED)
        or any(phrase in text for phrase in NAME_NOT_FOUND)
    ):
        return "not reachable (host name not found)"
    if any("timeout" in name.lower() or "timedout" in name.lower() for name in names):
        return f"timed out after {timeout_s:g} s"
    if names.intersection(UNREACHABLE):
        return "not reachable"
    return f"failed ({type(error).__name__})"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what caused it, and the per-host errors a driver collected (Cassandra)."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        per_host = getattr(current, "errors", None)
        if isinstance(per_host, dict):
            pending += [e for e in per_host.values() if isinstance(e, BaseException)]
