"""The faults, in the order they are applied, and how each one is injected.

A fault's `inject` returns once the fault has been applied and its cause undone (the
process killed, the server back): from then on recovery is the pipeline's business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from crypto_platform.chaos.pipeline import DRIVER, PRODUCER, SINK, Pipeline
from crypto_platform.errors import ConfigurationError
from crypto_platform.stack import LocalStack
from crypto_platform.stack.server import LocalServer

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Target:
    """What the faults act on."""

    stack: LocalStack
    pipeline: Pipeline
    outage_s: float


@dataclass(frozen=True)
class Fault:
    """One fault: a short key (for --faults), a label (for the table) and its injection."""

    key: str
    label: Callable[[float], str]
    inject: Callable[[Target], None]


def _kill(component: str) -> Callable[[Target], None]:
    return lambda target: target.pipeline.kill(component)


def _restart_broker(target: Target) -> None:
    """SIGTERM the broker (it saves its state), and start it again as soon as it is gone.

    noida-db rewrites its whole state on the way out, which takes a while once it holds a
    few minutes of ticks on a busy machine: it gets STOP_TIMEOUT_S before a SIGKILL.
    """
    server = _server(target, "kafka")
    started = time.monotonic()
    server.process.stop(timeout=STOP_TIMEOUT_S)
    log.info("kafka: stopped after %.1fs", time.monotonic() - started)
    target.stack.up(progress=log.info)  # waits for a port a retrying client still holds


def _outage(server: str) -> Callable[[Target], None]:
    def inject(target: Target) -> None:
        started = time.monotonic()
        _server(target, server).process.stop(timeout=STOP_TIMEOUT_S)
        log.info("%s stopped; starting it again in %.0fs", server, target.outage_s)
        time.sleep(max(0.0, started + target.outage_s - time.monotonic()))
        target.stack.up(progress=log.info)

    return inject


def _server(target: Target, name: str) -> LocalServer:
    return next(server for server in target.stack.servers if server.name == name)


FAULTS: tuple[Fault, ...] = (
    Fault("kill-producer", lambda _: "SIGKILL producer (restarted)", _kill(PRODUCER)),
    Fault("kill-sink", lambda _: "SIGKILL MongoDB sink (restarted)", _kill(SINK)),
    Fault("kill-spark", lambda _: "SIGKILL Spark driver (restarted)", _kill(DRIVER)),
    Fault("restart-broker", lambda _: "SIGTERM restart of the broker", _restart_broker),
    Fault("stop-mongodb", lambda s: f"MongoDB stopped for {s:.0f} s", _outage("mongodb")),
    Fault("stop-cassandra", lambda s: f"Cassandra stopped for {s:.0f} s", _outage("cassandra")),
)


def select(keys: list[str] | None) -> list[Fault]:
    """The faults named (in the given order), or all of them."""
    if not keys:
        return list(FAULTS)
    by_key = {fault.key: fault for fault in FAULTS}
    unknown = [key for key in keys if key not in by_key]
    if unknown:
        raise ConfigurationError(
            f"unknown fault {', '.join(unknown)}: choose from {', '.join(by_key)}"
        )
    return [by_key[key] for key in keys]
