"""Session fixtures: one real test stack on free ports in a temp dir, fresh names per test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from crypto_platform.defs.resources.clients import forget_loaded_settings
from crypto_platform.settings import Settings, load_settings
from crypto_platform.spark.cassandra_writer import close_sessions
from crypto_platform.spark.kafka_source import close_idle_consumers
from crypto_platform.spark.session import spark_session
from crypto_platform.stack import LocalStack
from crypto_platform.stack.ephemeral import ephemeral_settings

REPO = Path(__file__).resolve().parents[1]

# What a test needs decides its markers, so `pytest -m "not stack"` runs exactly the tests
# that need no server (the fast loop): a test using one of these fixtures gets its marker.
# Modules that start a server another way (chromium, `dagster dev`) mark themselves.
FIXTURE_MARKERS = {"stack": "stack", "spark": "spark"}
# Each of these starts a real server (a Spark JVM, chromium, dagster dev): also `stack`.
SERVER_MARKERS = {"spark", "browser", "dagster_dev"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        present = {mark.name for mark in item.iter_markers()}
        wanted = present | {m for f, m in FIXTURE_MARKERS.items() if f in item.fixturenames}
        if wanted & SERVER_MARKERS:
            wanted.add("stack")
        for marker in sorted(wanted - present):
            item.add_marker(marker)


def stack_settings_at(data_dir: Path) -> Settings:
    return ephemeral_settings(data_dir, REPO / load_settings().vendor_dir)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The test stack, started once per session and stopped at its end."""
    local = LocalStack(stack_settings_at(tmp_path_factory.mktemp("stack")))
    try:
        local.up()
        yield local
    finally:
        # Clients the tests' own process cached (the Spark writer's and reader's) go before
        # their servers.
        close_sessions()
        close_idle_consumers()
        local.down()


@pytest.fixture(scope="session")
def stack_settings(stack: LocalStack) -> Settings:
    return stack.settings


@pytest.fixture(scope="session")
def spark(stack_settings: Settings) -> Iterator[SparkSession]:
    """The suite's one SparkSession (its start costs 7-15 s here), stopped at the end."""
    session = spark_session(stack_settings.model_copy(update={"spark_master": "local[2]"}))
    yield session
    session.stop()


def isolated_settings(stack: LocalStack, **update: object) -> Settings:
    """The stack's settings with a fresh topic, group, database and keyspace (provisioned)."""
    tag = uuid.uuid4().hex[:10]
    isolated = stack.settings.model_copy(
        update={
            "kafka_topic": f"prices-{tag}",
            "kafka_dlq_topic": f"prices-{tag}.dlq",
            "kafka_consumer_group": f"sink-{tag}",
            "mongo_database": f"crypto_{tag}",
            "cassandra_keyspace": f"crypto_{tag}",
            **update,
        }
    )
    LocalStack(isolated).provision()
    return isolated


@pytest.fixture
def settings(stack: LocalStack) -> Settings:
    """The test stack's settings with this test's own topic, group, database and keyspace."""
    return isolated_settings(stack)


@pytest.fixture
def loaded_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Set a `CRYPTO_*` variable as if the definitions had loaded with it.

    Sensors and schedules read their settings once per process (`loaded_settings`): each
    variable set here is read afresh, and after the test the variables as they were.
    """

    def setenv(variable: str, value: str) -> None:
        monkeypatch.setenv(variable, value)
        forget_loaded_settings()

    yield setenv
    forget_loaded_settings()


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
