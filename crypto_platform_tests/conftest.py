"""Session fixtures: one real test stack on free ports in a temp dir, fresh names per test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from crypto_platform.settings import Settings, load_settings
from crypto_platform.stack import LocalStack

REPO = Path(__file__).resolve().parents[1]


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (all held open together, so they differ)."""
    with ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def stack_settings_at(data_dir: Path) -> Settings:
    """Settings for a stack of its own: every port free, data under `data_dir`."""
    kafka, mongo, native, storage, ssl, jmx = free_ports(6)
    return load_settings(
        data_dir=data_dir,
        vendor_dir=(REPO / load_settings().vendor_dir).resolve(),
        kafka_bootstrap_servers=f"127.0.0.1:{kafka}",
        mongo_uri=f"mongodb://127.0.0.1:{mongo}/",
        cassandra_port=native,
        cassandra_storage_port=storage,
        cassandra_ssl_storage_port=ssl,
        cassandra_jmx_port=jmx,
    )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The test stack, started once per session and stopped at its end."""
    local = LocalStack(stack_settings_at(tmp_path_factory.mktemp("stack")))
    try:
        local.up()
        yield local
    finally:
        local.down()


@pytest.fixture(scope="session")
def stack_settings(stack: LocalStack) -> Settings:
    return stack.settings


@pytest.fixture
def settings(stack: LocalStack) -> Settings:
    """The test stack's settings with this test's own topic, group, database and keyspace."""
    tag = uuid.uuid4().hex[:10]
    isolated = stack.settings.model_copy(
        update={
            "kafka_topic": f"prices-{tag}",
            "kafka_dlq_topic": f"prices-{tag}.dlq",
            "kafka_consumer_group": f"sink-{tag}",
            "mongo_database": f"crypto_{tag}",
            "cassandra_keyspace": f"crypto_{tag}",
        }
    )
    LocalStack(isolated).provision()
    return isolated


def run_cli(
    settings: Settings,
    *args: str,
    timeout: float = 120,
    env_override: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run `python -m crypto_platform ARGS` against `settings`, as a user would."""
    env = {**os.environ, **settings.as_env(), **(env_override or {})}
    return subprocess.run(
        [sys.executable, "-m", "crypto_platform", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
