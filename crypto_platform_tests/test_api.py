"""The REST API against real Cassandra (and Kafka, MongoDB): known rows in, exact JSON out."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crypto_platform.settings import Settings
from crypto_platform.stack.ephemeral import free_ports
from crypto_platform.storage import cassandra
from crypto_platform_tests.api_helpers import (
    NOW,
    get,
    listening,
    running_api,
    tick_row,
    write_ticks,
    write_window,
)
from crypto_platform_tests.conftest import REPO

T1 = NOW - dt.timedelta(minutes=3)
BTC_EXTRA = {
    "name": "Bitcoin",
    "market_cap": 1.3e12,
    "volume_24h": 2.5e10,
    "change_24h_pct": -1.25,
    "number_of_markets": 9876,
    "total_supply": 21_000_000.0,
    "uuid": "Qwsogvtv82FCd",
    "source": "coinranking",
}


def iso(moment: dt.datetime) -> str:
    return moment.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def seeded(settings: Settings) -> Settings:
    """BTC with every field, ETH with the optional ones null; windows for BTC."""
    write_ticks(
        settings,
        [
            tick_row("BTC", 64_000.5, T1 - dt.timedelta(seconds=20), **BTC_EXTRA),
            tick_row("BTC", 64_010.25, T1 - dt.timedelta(seconds=10), **BTC_EXTRA),
            tick_row("BTC", 64_020.0, T1, **BTC_EXTRA),
            tick_row("ETH", 3_200.0, T1),
        ],
    )
    start = T1.replace(second=0) - dt.timedelta(minutes=4)
    write_window(settings, "BTC", start - dt.timedelta(minutes=1), (1.0, 0.9, 0.8), latest=False)
    write_window(settings, "BTC", start, (64_010.0, 64_009.9, 64_009.8))
    return settings


@pytest.fixture
def api(seeded: Settings) -> Iterator[str]:
    with running_api(seeded) as base:
        yield base


def test_latest_price_has_the_seed_fields_with_real_values(api: str) -> None:
    response = get(api, "/latestPrice/btc")

    assert response.status_code == 200
    assert response.json() == {
        "symbol_coin": "BTC",
        "name_coin": "Bitcoin",
        "price": 64_020.0,
        "timestamp": iso(T1),
        "market_cap": 1.3e12,
        "volume": 2.5e10,
        "percent_change_24hr": -1.25,
        "number_of_markets": 9876,
        "total_supply": 21_000_000.0,
        "uuid": "Qwsogvtv82FCd",
        "id": f"coinranking:BTC:{int(T1.replace(tzinfo=dt.UTC).timestamp() * 1000)}",
        "source": "coinranking",
        "quote": "USD",
    }


def test_latest_prices_lists_every_coin_with_nulls_where_the_source_had_nothing(api: str) -> None:
    body = get(api, "/latestPrice").json()

    assert [item["symbol_coin"] for item in body] == ["BTC", "ETH"]
    eth = body[1]
    assert eth["price"] == 3_200.0 and eth["source"] == "simulated"
    assert eth["number_of_markets"] is None and eth["uuid"] is None


def test_latest_aggregate_is_the_newest_window_whatever_its_end(api: str) -> None:
    start = T1.replace(second=0) - dt.timedelta(minutes=4)
    expected = {
        "symbol_coin": "BTC",
        "arithmetic_mean": 64_010.0,
        "geometric_mean": 64_009.9,
        "harmonic_mean": 64_009.8,
        "start_time": iso(start),
        "end_time": iso(start + dt.timedelta(minutes=5)),
        "window_seconds": 300,
        "tick_count": 12,
    }
    one = get(api, "/latestAggregate/BTC")
    every = get(api, "/latestAggregate")

    assert one.status_code == 200 and every.status_code == 200
    assert {k: one.json()[k] for k in expected} == expected
    assert [item["symbol_coin"] for item in every.json()] == ["BTC"]


def test_latest_aggregate_serves_one_source_by_priority_and_source_chooses(
    seeded: Settings,
) -> None:
    start = T1.replace(second=0) - dt.timedelta(minutes=4)
    # BTC's simulated windows beside binance's (seeded); SOL's binance window ended 20 min
    # before its simulated one (Binance stopped and `auto` fell back to the simulator).
    write_window(seeded, "BTC", start, (70_000.0, 69_999.0, 69_998.0), source="simulated")
    write_window(seeded, "BTC", start - dt.timedelta(minutes=1), (5.0, 4.0, 3.0),
                 latest=False, source="simulated")  # fmt: skip
    write_window(seeded, "SOL", start - dt.timedelta(minutes=20), (150.0, 149.9, 149.8))
    write_window(seeded, "SOL", start, (151.0, 150.9, 150.8), source="simulated")

    with running_api(seeded) as api:
        default = get(api, "/latestAggregate").json()
        chosen = get(api, "/latestAggregate/BTC", source="simulated").json()
        missing = get(api, "/latestAggregate/BTC", source="coinranking")
        unknown = get(api, "/latestAggregate/BTC", source="kraken")
        history = get(api, "/aggregates/BTC", since=iso(T1 - dt.timedelta(minutes=30)),
                      source="simulated").json()  # fmt: skip

    assert [(w["symbol_coin"], w["source"], w["arithmetic_mean"]) for w in default] == [
        ("BTC", "binance", 64_010.0),  # both current: the first in the priority
        ("SOL", "simulated", 151.0),  # binance's is stale: the current one
    ]
    assert (chosen["source"], chosen["arithmetic_mean"]) == ("simulated", 70_000.0)
    assert missing.status_code == 404 and "BTC from coinranking" in missing.json()["detail"]
    assert unknown.status_code == 422
    assert [w["arithmetic_mean"] for w in history] == [5.0, 70_000.0]


def test_price_history_is_oldest_first_within_the_range_and_limit(api: str) -> None:
    since = iso(T1 - dt.timedelta(seconds=15))
    in_range = get(api, "/prices/BTC", since=since, until=iso(T1))
    newest_two = get(api, "/prices/Btc", since=iso(T1 - dt.timedelta(hours=1)), limit=2)

    assert [p["price"] for p in in_range.json()] == [64_010.25, 64_020.0]
    assert [p["price"] for p in newest_two.json()] == [64_010.25, 64_020.0]
    assert newest_two.json()[0]["timestamp"] == iso(T1 - dt.timedelta(seconds=10))


def test_aggregate_history_lists_the_windows_oldest_first(api: str) -> None:
    body = get(api, "/aggregates/BTC", since=iso(T1 - dt.timedelta(minutes=30))).json()

    assert [w["arithmetic_mean"] for w in body] == [1.0, 64_010.0]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/latestPrice/DOGE", {}),
        ("/latestAggregate/ETH", {}),  # prices, but no window yet
        ("/prices/DOGE", {}),
        ("/aggregates/DOGE", {}),
    ],
)
def test_an_unknown_symbol_is_a_404_with_a_json_error(api: str, path: str, params: dict) -> None:
    response = get(api, path, **params)

    assert response.status_code == 404
    assert "unknown symbol" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/latestPrice/BT-C", {}),
        ("/latestPrice/" + "X" * 21, {}),
        ("/prices/BTC", {"limit": 0}),
        ("/prices/BTC", {"limit": "many"}),
        ("/prices/BTC", {"since": "yesterday"}),
        ("/prices/BTC", {"since": iso(T1), "until": iso(T1 - dt.timedelta(hours=1))}),
        ("/prices/BTC", {"since": iso(T1 - dt.timedelta(days=40)), "until": iso(T1)}),
        ("/aggregates/BTC", {"since": "0001-01-01T00:00:00+14:00"}),
    ],
)
def test_bad_parameters_are_a_422_naming_the_parameter(api: str, path: str, params: dict) -> None:
    response = get(api, path, **params)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] in ("path", "query")


def test_limits_are_capped_not_refused(api: str) -> None:
    response = get(api, "/prices/BTC", limit=10**9)

    assert response.status_code == 200 and len(response.json()) == 3


def test_health_and_metrics_read_every_backend(api: str, seeded: Settings) -> None:
    health = get(api, "/health")
    scrape = get(api, "/metrics")

    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "backends": {
            name: {"up": True, "error": None} for name in ("cassandra", "mongodb", "kafka")
        },
    }
    assert scrape.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scrape.text)
        for s in family.samples
    }
    assert samples[("crypto_latest_price", (("symbol", "BTC"),))] == 64_020.0
    assert samples[("crypto_tick_age_seconds", (("symbol", "ETH"),))] >= 180
    assert samples[("crypto_backend_up", (("backend", "cassandra"),))] == 1.0
    topic = (("topic", seeded.kafka_topic),)
    assert samples[("crypto_kafka_messages_total", topic)] == 0.0
    group = (("group", seeded.kafka_consumer_group), *topic)
    assert samples[("crypto_kafka_consumer_lag", group)] == 0.0
    assert samples[("crypto_dlq_messages", ())] == 0.0
    collection = (("collection", f"{seeded.mongo_database}.prices"),)
    assert samples[("crypto_mongo_documents", collection)] == 0.0
    assert ("crypto_aggregate_window_end_seconds", (("symbol", "BTC"),)) in samples
    request = (("method", "GET"), ("path", "/health"), ("status", "200"))
    assert samples[("crypto_api_requests_total", request)] == 1.0


def test_cassandra_down_is_a_503_naming_it(seeded: Settings) -> None:
    down = seeded.model_copy(update={"cassandra_port": free_ports(1)[0]})
    with running_api(down) as base:
        latest = get(base, "/latestPrice/BTC")
        health = get(base, "/health")
        scrape = get(base, "/metrics")

    assert latest.status_code == 503
    assert latest.json()["backend"] == "cassandra"
    assert "Traceback" not in latest.text
    assert health.status_code == 503
    backends = health.json()["backends"]
    assert not backends["cassandra"]["up"] and backends["cassandra"]["error"]
    assert backends["kafka"]["up"] and backends["mongodb"]["up"]
    assert scrape.status_code == 200
    assert 'crypto_backend_up{backend="cassandra"} 0.0' in scrape.text


def test_the_push_stream_delivers_a_price_written_after_the_client_connected(
    api: str, seeded: Settings
) -> None:
    with listening(api, "price", lambda tick: tick["price"] == 64_321.0) as received:
        write_ticks(seeded, [tick_row("BTC", 64_321.0, NOW)])

    assert received and received[-1] == {
        "symbol_coin": "BTC",
        "price": 64_321.0,
        "timestamp": iso(NOW),
        "source": "simulated",
    }


def test_cors_is_a_setting(seeded: Settings) -> None:
    origin = {"Origin": "http://dashboard.example"}
    with running_api(seeded) as closed:
        refused = httpx.get(closed + "/latestPrice", headers=origin)
    allowed_settings = seeded.model_copy(update={"api_cors_origins": ["http://dashboard.example"]})
    with running_api(allowed_settings) as open_:
        allowed = httpx.get(open_ + "/latestPrice", headers=origin)

    assert "access-control-allow-origin" not in refused.headers
    assert allowed.headers["access-control-allow-origin"] == "http://dashboard.example"


def test_openapi_docs_and_dashboard_are_served(api: str) -> None:
    assert get(api, "/docs").status_code == 200
    paths = get(api, "/openapi.json").json()["paths"]
    assert {"/latestPrice/{symbol}", "/aggregates/{symbol}", "/stream", "/metrics"} <= set(paths)
    page = get(api, "/")
    assert page.status_code == 200 and "/vendor/chart.js" in page.text
    assert "Chart" in get(api, "/vendor/chart.js").text


def test_ensure_schema_adds_the_new_columns_to_an_older_latest_prices(settings: Settings) -> None:
    cluster, session = cassandra.connect(settings)
    keyspace = settings.cassandra_keyspace + "_old"
    try:
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(
            f"CREATE TABLE {keyspace}.latest_prices (symbol text PRIMARY KEY, source text, "
            "price double, quote text, event_time timestamp, ingest_time timestamp, "
            "name text, market_cap double, volume_24h double, change_24h_pct double)"
        )
        cassandra.ensure_schema(session, keyspace)
        cassandra.ensure_schema(session, keyspace)  # idempotent
        cluster.refresh_table_metadata(keyspace, "latest_prices")
        columns = cluster.metadata.keyspaces[keyspace].tables["latest_prices"].columns
    finally:
        cluster.shutdown()

    assert {"number_of_markets", "total_supply", "uuid"} <= set(columns)


def test_the_api_command_serves_and_stops_cleanly_on_sigterm(seeded: Settings) -> None:
    port = free_ports(1)[0]
    env = {**os.environ, **seeded.as_env(), "CRYPTO_API_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "crypto_platform", "api"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = None
        for _ in range(100):
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/latestPrice/ETH").json()
                break
            except httpx.TransportError:
                time.sleep(0.2)
        stream = httpx.stream("GET", f"http://127.0.0.1:{port}/stream", timeout=30)
        stream.__enter__()  # an open push stream must not hold the shutdown up
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
        stream.__exit__(None, None, None)
    finally:
        process.kill()

    assert body is not None and body["price"] == 3_200.0
    assert process.returncode == 0, output
    assert "Traceback" not in output
