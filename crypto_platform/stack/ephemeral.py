"""A throw-away stack on free ports in a directory of its own (tests and the benchmark)."""

from __future__ import annotations

import socket
from contextlib import ExitStack
from pathlib import Path

from crypto_platform.settings import Settings, load_settings


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (all held open together, so they differ)."""
    with ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def ephemeral_settings(data_dir: Path, vendor_dir: Path | None = None) -> Settings:
    """Settings for a stack of its own: every port free, data under `data_dir`."""
    kafka, mongo, native, storage, ssl, jmx = free_ports(6)
    base = load_settings()
    return load_settings(
        data_dir=data_dir,
        vendor_dir=(vendor_dir or base.vendor_dir).resolve(),
        kafka_bootstrap_servers=f"127.0.0.1:{kafka}",
        mongo_uri=f"mongodb://127.0.0.1:{mongo}/?directConnection=true",
        cassandra_port=native,
        cassandra_storage_port=storage,
        cassandra_ssl_storage_port=ssl,
        cassandra_jmx_port=jmx,
    )
