"""A throw-away stack on free ports in a directory of its own (tests and the benchmark)."""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack
from pathlib import Path

from crypto_platform.errors import StackError
from crypto_platform.settings import Settings, load_settings

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
FIRST_PORT = 20000  # above the ports well-known servers use by default
PORT_TRIES = 200


def _first_ephemeral_port() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int) -> list[int]:
    """Ports nothing holds now, all below the kernel's ephemeral range.

    A server on an ephemeral port can lose it while it is down: any outgoing connection on
    the machine may be given that number as its own, and a pooled one keeps it for minutes.
    Below the range, a stack restarted in place gets its ports back.
    """
    below_ephemeral = range(FIRST_PORT, _first_ephemeral_port())
    candidates = random.sample(below_ephemeral, k=min(PORT_TRIES, len(below_ephemeral)))
    with ExitStack() as held:
        ports: list[int] = []
        for port in candidates:
            sock = held.enter_context(socket.socket())
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            ports.append(port)
            if len(ports) == count:
                return ports
    raise StackError(
        f"no {count} free ports among {len(candidates)} tried in {below_ephemeral} "
        f"(below the kernel's ephemeral ports, {EPHEMERAL_RANGE})"
    )


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
