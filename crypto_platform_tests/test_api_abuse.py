"""The API under abuse: many streams, request bursts, backends down, clients reconnecting.

Every test runs the real app (uvicorn in a thread) against the test stack.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import psutil
import pytest
import yaml

from crypto_platform.api.backends import KafkaReading
from crypto_platform.api.observation import Observation
from crypto_platform.api.pipeline import PipelineMeter
from crypto_platform.settings import Settings
from crypto_platform.stack.ephemeral import free_ports
from crypto_platform_tests.api_helpers import (
    NOW,
    Event,
    events_until,
    get,
    running_api,
    sse_events,
    tick_row,
    write_ticks,
)
from crypto_platform_tests.conftest import REPO

EARLIER = NOW - dt.timedelta(minutes=3)
SHORT_REASON = re.compile(
    r"authentication failed|not reachable( \((connection refused|host name not found)\))?|"
    r"timed out after [\d.]+ s|failed \(\w+\)"
)


@pytest.fixture
def seeded(settings: Settings) -> Settings:
    write_ticks(settings, [tick_row("BTC", 64_000.0, EARLIER), tick_row("ETH", 3_200.0, EARLIER)])
    return settings


@pytest.fixture
def api(seeded: Settings) -> Iterator[str]:
    with running_api(seeded) as base:
        yield base


def subscribed(stack: ExitStack, base: str, **headers: str) -> Iterator[Event]:
    """An open `/stream` whose `subscribed` comment has arrived.

    It closes with `stack`, or as soon as its events are dropped.
    """
    response = stack.enter_context(
        httpx.stream("GET", base + "/stream", headers=headers, timeout=30)
    )
    assert response.status_code == 200, response.read()
    events = sse_events(response)
    assert next(events).comment == "subscribed"
    return events


def open_stream(base: str) -> httpx.Response:
    """`/stream` opened and closed again: its status, headers and, unless 200, its body."""
    with httpx.stream("GET", base + "/stream", timeout=10) as response:
        if response.status_code != 200:
            response.read()
        return response


def test_streams_beyond_the_cap_get_a_503_with_retry_after_until_one_closes(
    seeded: Settings,
) -> None:
    capped = seeded.model_copy(update={"api_max_subscribers": 2})
    with running_api(capped) as base, ExitStack() as first:
        held = [subscribed(first, base)]  # a stream read no more is closed: keep them
        with ExitStack() as second:
            held.append(subscribed(second, base))
            refused = open_stream(base)
        deadline = time.monotonic() + 10
        while (again := open_stream(base)).status_code == 503:
            assert time.monotonic() < deadline, "a closed stream never freed its slot"
            time.sleep(0.2)

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert refused.json() == {"detail": "too many live streams: all 2 are taken, retry later"}
    assert again.status_code == 200


def broker_connections(port: int) -> set[int]:
    """Local ports of this process's TCP connections to `port`, open or closed (TIME_WAIT).

    A client that closes its connection leaves it in TIME_WAIT for a minute: a connection
    opened and closed during a burst is still seen after it.
    """
    return {
        c.laddr.port
        for c in psutil.net_connections("tcp")
        if c.raddr and c.raddr.port == port and c.pid in (os.getpid(), None)
    }


async def burst(base: str, paths: list[str], count: int) -> list[int]:
    """`count` requests at once over `paths`; their status codes."""
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        answers = await asyncio.gather(*(client.get(paths[i % len(paths)]) for i in range(count)))
    return [answer.status_code for answer in answers]


def test_500_concurrent_operations_requests_open_no_broker_connection(
    api: str, seeded: Settings
) -> None:
    broker = int(seeded.kafka_bootstrap_servers.rpartition(":")[2])
    paths = ["/health", "/pipeline", "/metrics"]
    for path in paths:  # the shared clients are open from here on
        assert get(api, path).status_code == 200
    before = broker_connections(broker)

    statuses = asyncio.run(burst(api, paths, 500))
    opened = broker_connections(broker) - before

    assert before, "the API holds no connection to the broker: nothing was measured"
    assert statuses == [200] * 500
    assert not opened, f"{len(opened)} broker connections opened by 500 requests"


def test_health_answers_a_short_reason_naming_no_host(seeded: Settings) -> None:
    kafka, mongo, cassandra = free_ports(3)
    down = seeded.model_copy(
        update={
            "kafka_bootstrap_servers": f"localhost:{kafka}",
            "mongo_uri": f"mongodb://localhost:{mongo}/?directConnection=true",
            "cassandra_hosts": ["localhost"],
            "cassandra_port": cassandra,
        }
    )
    with running_api(down) as base:
        health = get(base, "/health")
        latest = get(base, "/latestPrice")
        ready = get(base, "/health/ready")
        live = get(base, "/health/live")

    assert health.status_code == 503
    errors = {name: state["error"] for name, state in health.json()["backends"].items()}
    assert set(errors) == {"cassandra", "mongodb", "kafka"}
    for name, error in errors.items():
        assert SHORT_REASON.fullmatch(error), f"{name}: {error!r}"
    for answer in (health, latest, ready):
        for leak in ("localhost", "127.0.0.1", str(kafka), str(mongo), str(cassandra)):
            assert leak not in answer.text, answer.text
    assert latest.status_code == 503 and latest.json()["backend"] == "cassandra"
    assert ready.status_code == 503 and not ready.json()["backends"]["cassandra"]["up"]
    assert live.status_code == 200


def test_kafka_down_leaves_the_api_live_and_ready(seeded: Settings) -> None:
    without_kafka = seeded.model_copy(
        update={"kafka_bootstrap_servers": f"127.0.0.1:{free_ports(1)[0]}"}
    )
    with running_api(without_kafka) as base:
        live = get(base, "/health/live")
        ready = get(base, "/health/ready")
        health = get(base, "/health")

    assert live.status_code == 200 and live.json() == {"status": "ok", "backends": {}}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "backends": {"cassandra": {"up": True, "error": None}}}
    assert health.status_code == 503
    assert health.json()["backends"]["kafka"] == {
        "up": False,
        "error": "timed out after 2 s",
    }
    assert health.json()["backends"]["cassandra"]["up"]


def kafka_io_threads() -> int:
    return sum(thread.name.startswith("kafka-io") for thread in threading.enumerate())


def test_readings_while_kafka_is_down_leave_no_client_thread_behind(seeded: Settings) -> None:
    kafka = f"127.0.0.1:{free_ports(1)[0]}"
    without_kafka = seeded.model_copy(
        update={"kafka_bootstrap_servers": kafka, "api_backend_cache_s": 0}
    )
    before = kafka_io_threads()
    with running_api(without_kafka) as base:
        answers = [get(base, "/health").status_code for _ in range(3)]
        deadline = time.monotonic() + 5
        while kafka_io_threads() > before and time.monotonic() < deadline:
            time.sleep(0.1)
        left = kafka_io_threads() - before

    assert answers == [503] * 3
    assert left == 0, f"{left} Kafka client threads left running by 3 failed readings"


def test_events_carry_ids_and_a_reconnect_resumes_without_a_hole(
    api: str, seeded: Settings
) -> None:
    with ExitStack() as connection:
        events = subscribed(connection, api)
        time.sleep(1)  # the poller has taken its first look: what follows is new
        write_ticks(seeded, [tick_row("BTC", 64_321.0, NOW)])
        before = events_until(events, lambda e: e.event == "latestPrice")
    # Written while the client is away (its browser reconnects a few seconds later).
    write_ticks(
        seeded,
        [tick_row("BTC", 64_322.0 + i, NOW + dt.timedelta(seconds=1 + i)) for i in range(2)],
    )
    time.sleep(1)
    with ExitStack() as connection:
        events = subscribed(connection, api, **{"Last-Event-ID": before[-1].id or ""})
        after = events_until(
            events, lambda e: e.event == "latestPrice" and e.data["price"] == 64_323.0
        )

    ids = [int(event.id or 0) for event in before + after]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "ids are not consecutive"
    assert [e.data["price"] for e in before + after if e.event == "price"] == [
        64_321.0,
        64_322.0,
        64_323.0,
    ]


@pytest.mark.parametrize("last_event_id", ["1", "not-an-id"])
def test_a_reconnect_the_stream_cannot_resume_gets_a_reset(api: str, last_event_id: str) -> None:
    with ExitStack() as connection:
        first = next(subscribed(connection, api, **{"Last-Event-ID": last_event_id}))

    assert first.event == "reset" and first.id is not None
    assert first.data["reason"]


def test_a_shared_reading_keeps_its_ticks_per_second() -> None:
    settings = Settings()
    meter = PipelineMeter(settings)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def reading(second: int, ticks: int) -> Observation:
        kafka = KafkaReading({settings.kafka_topic: ticks}, lag=0)
        return Observation(taken_at=start + dt.timedelta(seconds=second), kafka=kafka)

    first, second = reading(0, 100), reading(2, 300)
    rates = [meter.state(seen).ticks_per_s for seen in (first, second, second)]

    assert rates == [None, 100.0, 100.0]


def test_the_api_container_health_check_asks_readiness() -> None:
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    check = " ".join(compose["services"]["api"]["healthcheck"]["test"])

    assert re.search(r"http://127\.0\.0\.1:8000/health/ready'", check), check
