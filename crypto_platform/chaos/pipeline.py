"""The pipeline under test: producer, MongoDB sink and Spark job as `crypto-platform` processes.

Each runs in a session of its own (so a SIGKILL hits it alone, and whatever it started can
be found afterwards) with the chaos stack's settings in its environment. A supervisor
thread restarts any that ended, as the Dagster sensor does in production: a killed one at
once, one that failed on its own after a short pause.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from crypto_platform.settings import Settings
from crypto_platform.stack.process import ServerProcess, process_alive, stop_sessions

log = logging.getLogger(__name__)

PRODUCER, SINK, DRIVER = "producer", "sink", "spark-driver"
RESTART_PAUSE_S = 2.0
# A killed process's children get this long to end by themselves (the Spark JVM ends
# when its Python driver's pipe closes) before they are killed too.
ORPHAN_GRACE_S = 10.0


@dataclass
class Component:
    """One long-running command and what happened to it."""

    name: str
    argv: list[str]
    process: ServerProcess
    restarts: int = 0
    failures: int = 0
    orphans_killed: int = 0
    leader: int | None = None
    held: bool = False
    killed: bool = False
    due_at: float = 0.0


@dataclass
class Pipeline:
    """Starts, kills, restarts and stops the three components."""

    settings: Settings
    rate: float
    run_dir: Path
    components: dict[str, Component] = field(init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        command = [sys.executable, "-m", "crypto_platform"]
        argvs = {
            PRODUCER: [*command, "produce", "--source", "simulated", "--rate", str(self.rate)],
            SINK: [*command, "consume"],
            DRIVER: [*command, "aggregate"],
        }
        self.components = {
            name: Component(name, argv, ServerProcess(name, self.run_dir))
            for name, argv in argvs.items()
        }

    @property
    def env(self) -> dict[str, str]:
        """Our environment with the chaos stack's settings (secrets too: never logged)."""
        return {**os.environ, **self.settings.as_env(), "PYTHONUNBUFFERED": "1"}

    @property
    def ledger_dir(self) -> Path:
        """Where each producer process writes its ledger of acknowledged ticks."""
        return self.run_dir / "ledgers"

    def _argv(self, component: Component) -> list[str]:
        if component.name != PRODUCER:
            return component.argv
        ledger = self.ledger_dir / f"producer-{component.restarts}.ledger"  # one per process
        return [*component.argv, "--ledger", str(ledger)]

    def start(self, name: str) -> None:
        with self._lock:
            component = self.components[name]
            component.leader = component.process.start(self._argv(component), env=self.env)
            component.held = False
            log.info("%s: started (pid %d)", name, component.leader)

    def kill(self, name: str) -> None:
        """SIGKILL the process, then whatever it left behind; the supervisor restarts it."""
        with self._lock:
            component = self.components[name]
            pid = component.process.pid()
            if pid is None:
                log.warning("%s: not running when it was to be killed", name)
                return
            os.kill(pid, signal.SIGKILL)
            while process_alive(pid):
                time.sleep(0.02)
            leftovers = stop_sessions([pid], grace=ORPHAN_GRACE_S)
            component.orphans_killed += leftovers
            component.killed = True
            log.info(
                "%s: killed (pid %d); %d processes it left had to be killed", name, pid, leftovers
            )

    def stop(self, name: str, timeout: float = 60.0) -> None:
        """SIGTERM (the command flushes and commits), then clear its session; not restarted."""
        with self._lock:
            component = self.components[name]
            component.held = True
            pid = component.process.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop_sessions([pid], grace=ORPHAN_GRACE_S if process_alive(pid) else 0.0)
        component.process.stop(timeout=1.0)  # forgets the pid file
        log.info("%s: stopped (%s)", name, component.process.log_tail(1))

    def supervise_once(self) -> None:
        """Restart every component that ended and is not held."""
        with self._lock:
            for component in self.components.values():
                if component.held or component.process.pid() is not None:
                    continue
                now = time.monotonic()
                if not component.killed and component.leader is not None:
                    # It ended by itself (a store was down, say): clear up, pause, restart.
                    component.failures += 1
                    component.orphans_killed += stop_sessions([component.leader], grace=5.0)
                    component.due_at = now + RESTART_PAUSE_S
                    component.leader = None
                    log.warning(
                        "%s ended by itself; restarting in %.0fs. Its last lines:\n%s",
                        component.name,
                        RESTART_PAUSE_S,
                        component.process.log_tail(4),
                    )
                if component.killed or now >= component.due_at:
                    component.killed = False
                    component.restarts += 1
                    self.start(component.name)

    def supervise(self, stop: threading.Event, every: Callable[[], None]) -> None:
        """Until `stop`: restart what ended, and call `every` (progress) each pass."""
        while not stop.wait(0.5):
            self.supervise_once()
            every()

    def shutdown(self) -> None:
        """Stop every component still running (used on the way out, whatever happened)."""
        for name in self.components:
            self.stop(name, timeout=15.0)
