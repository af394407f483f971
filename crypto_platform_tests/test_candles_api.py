"""GET /candles and the `candle` push event against real Cassandra: known candles in, JSON out."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from crypto_platform.api.routes import MAX_LIMIT
from crypto_platform.candles import INTERVALS, candle_start
from crypto_platform.settings import Settings
from crypto_platform.spark.cassandra_writer import CassandraTarget, write_rows
from crypto_platform.stack.ephemeral import free_ports
from crypto_platform_tests.api_helpers import (
    get,
    listening,
    running_api,
    tick_row,
    write_ticks,
    write_window,
)

HOUR_MS = INTERVALS["1h"]
# The current minute when the module loads; the candles are seeded before it.
MINUTE_MS = candle_start(int(time.time() * 1000), "1m")


def moment(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def naive(ms: int) -> dt.datetime:
    """As the test helpers write times: naive UTC."""
    return moment(ms).replace(tzinfo=None)


def iso(ms: int) -> str:
    return moment(ms).isoformat().replace("+00:00", "Z")


def write_candles(
    settings: Settings,
    symbol: str,
    interval: str,
    first_ms: int,
    opens: Sequence[float],
    *,
    source: str = "simulated",
    moves: Sequence[float] = (1.0,),
) -> None:
    """Consecutive candles from `first_ms`, one per open price, through the Spark writer.

    Each closes `moves` (in turn) from its open, its high and low 1 beyond both.
    """
    length = INTERVALS[interval]
    starts = [first_ms + i * length for i in range(len(opens))]
    closes = [price + moves[i % len(moves)] for i, price in enumerate(opens)]
    columns: dict[str, list] = {
        "symbol": [symbol] * len(starts),
        "source": [source] * len(starts),
        "window_start_ms": starts,
        "window_end_ms": [start + length for start in starts],
        "first_price": list(opens),
        "max_price": [max(pair) + 1 for pair in zip(opens, closes, strict=True)],
        "min_price": [min(pair) - 1 for pair in zip(opens, closes, strict=True)],
        "last_price": closes,
        "tick_count": [10] * len(starts),
        "last_event_ms": [start + length - 1 for start in starts],
    }
    write_rows(CassandraTarget.from_settings(settings), candles=columns)


# BTC: the last 30 minutes in 1m candles from simulated (opens 100, 101, ...) and in 5m
# ones (200, ...); before that, 10 minutes of binance's (500, ...), which then stopped.
FIRST_MS = MINUTE_MS - 30 * 60_000
BINANCE_MS = FIRST_MS - 40 * 60_000


@pytest.fixture
def seeded(settings: Settings) -> Settings:
    write_candles(settings, "BTC", "1m", FIRST_MS, [100.0 + i for i in range(30)])
    write_candles(settings, "BTC", "5m", FIRST_MS, [200.0 + i for i in range(6)])
    write_candles(
        settings, "BTC", "1m", BINANCE_MS, [500.0 + i for i in range(10)], source="binance"
    )
    return settings


@pytest.fixture
def api(seeded: Settings) -> Iterator[str]:
    with running_api(seeded) as base:
        yield base


def opens(response: httpx.Response) -> list[float]:
    assert response.status_code == 200, response.text
    return [candle["open"] for candle in response.json()]


def test_a_range_of_candles_oldest_first_each_with_its_span_and_prices(api: str) -> None:
    since, until = FIRST_MS + 25 * 60_000, FIRST_MS + 28 * 60_000
    body = get(api, "/candles/btc", interval="1m", since=iso(since), until=iso(until)).json()

    assert body == [
        {
            "symbol_coin": "BTC",
            "source": "simulated",
            "interval": "1m",
            "start": iso(start),
            "end": iso(start + 60_000),
            "open": price,
            "high": price + 2,
            "low": price - 1,
            "close": price + 1,
            "tick_count": 10,
        }
        for start, price in ((since, 125.0), (since + 60_000, 126.0), (since + 120_000, 127.0))
    ]


def test_a_candle_counts_when_it_starts_in_the_range(api: str) -> None:
    # [since, until): the candle holding `since` began before it; the one at `until` after.
    since, until = FIRST_MS + 25 * 60_000 + 30_000, FIRST_MS + 28 * 60_000
    body = opens(get(api, "/candles/BTC", since=iso(since), until=iso(until)))

    assert body == [126.0, 127.0]


def test_the_default_is_the_last_hour_of_1m_candles(api: str) -> None:
    assert opens(get(api, "/candles/BTC")) == [100.0 + i for i in range(30)]


def test_the_interval_chooses_the_series(api: str) -> None:
    body = get(api, "/candles/BTC", interval="5m", since=iso(FIRST_MS)).json()

    assert [c["open"] for c in body] == [200.0 + i for i in range(6)]
    assert {(c["interval"], c["source"]) for c in body} == {("5m", "simulated")}
    assert body[0]["end"] == iso(FIRST_MS + 300_000)


def test_the_live_source_serves_and_a_stopped_one_where_it_alone_has_candles(
    api: str, seeded: Settings
) -> None:
    # Binance comes first in the priority, but it stopped: its current window is 30 min old.
    write_window(seeded, "BTC", naive(BINANCE_MS + 300_000), (1.0, 1.0, 1.0), source="binance")
    write_window(seeded, "BTC", naive(MINUTE_MS - 300_000), (1.0, 1.0, 1.0), source="simulated")
    both = {"since": iso(BINANCE_MS), "until": iso(FIRST_MS + 120_000)}
    binance_only = {"since": iso(BINANCE_MS), "until": iso(BINANCE_MS + 600_000)}

    assert opens(get(api, "/candles/BTC", **both)) == [100.0, 101.0]
    assert opens(get(api, "/candles/BTC", **both, source="binance")) == [
        500.0 + i for i in range(10)
    ]
    assert opens(get(api, "/candles/BTC", **binance_only)) == [500.0 + i for i in range(10)]
    missing = get(api, "/candles/BTC", source="coinranking")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no 1m candles of BTC from coinranking in this range"


def test_the_limit_keeps_the_newest_and_is_capped_not_refused(api: str) -> None:
    assert opens(get(api, "/candles/BTC", limit=3)) == [127.0, 128.0, 129.0]
    assert len(opens(get(api, "/candles/BTC", limit=10**9))) == 30


@pytest.mark.parametrize(
    ("symbol", "params", "detail"),
    [
        ("DOGE", {}, "no 1m candles of DOGE in this range"),
        ("BTC", {"interval": "1h"}, "no 1h candles of BTC in this range"),
        ("BTC", {"since": iso(FIRST_MS - 2 * HOUR_MS)}, "no 1m candles of BTC in this range"),
    ],
)
def test_no_candles_is_a_404_with_a_json_error(
    api: str, symbol: str, params: dict, detail: str
) -> None:
    response = get(api, f"/candles/{symbol}", until=iso(FIRST_MS - HOUR_MS), **params)

    assert response.status_code == 404
    assert response.json() == {"detail": detail}


def test_a_bad_interval_is_a_422_listing_the_intervals(api: str) -> None:
    response = get(api, "/candles/BTC", interval="2m")

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["query", "interval"]
    assert all(f"'{name}'" in error["msg"] for name in INTERVALS)


@pytest.mark.parametrize(
    "params",
    [
        {"since": iso(MINUTE_MS), "until": iso(MINUTE_MS - HOUR_MS)},
        {"since": iso(MINUTE_MS - 32 * 24 * HOUR_MS), "until": iso(MINUTE_MS)},
        {"limit": 0},
        {"source": "kraken"},
    ],
)
def test_bad_parameters_are_a_422_naming_the_parameter(api: str, params: dict) -> None:
    response = get(api, "/candles/BTC", **params)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][1] in params


def test_the_calendars_last_day_is_a_range_like_any_other(api: str) -> None:
    response = get(api, "/candles/BTC", since="9999-12-31T00:00:00Z", until="9999-12-31T23:59:59Z")

    assert response.status_code == 404  # no candles there, and no error


def test_a_week_of_hourly_candles_is_168(settings: Settings) -> None:
    first = candle_start(MINUTE_MS, "1h") - 9 * 24 * HOUR_MS
    write_candles(settings, "ETH", "1h", first, [3_000.0 + i for i in range(9 * 24 + 1)])
    until = MINUTE_MS + 1234
    with running_api(settings) as api:
        body = get(api, "/candles/ETH", interval="1h", since=iso(until - 7 * 24 * HOUR_MS),
                   until=iso(until)).json()  # fmt: skip

    assert len(body) == 168
    assert body[0]["start"] == iso(candle_start(until, "1h") - 167 * HOUR_MS)
    assert body[-1]["start"] == iso(candle_start(until, "1h"))


def test_moving_windows_can_be_thinned_to_one_per_step(settings: Settings) -> None:
    hour = candle_start(MINUTE_MS, "1h") - 3 * HOUR_MS  # all of them before now
    for minute in range(150):  # windows sliding by a minute, 2.5 hours of them
        means = (1.0 + minute, 1.0, 1.0)
        write_window(settings, "BTC", naive(hour + minute * 60_000), means, latest=minute == 149)
    since = iso(hour - 60_000)
    with running_api(settings) as api:
        hourly = get(api, "/aggregates/BTC", since=since, every=3600).json()
        rounded = get(api, "/aggregates/BTC", since=since, every=3030).json()
        every = get(api, "/aggregates/BTC", since=since, every=1).json()

    def starts(windows: list[dict]) -> list[str]:
        return [window["start_time"] for window in windows]

    assert starts(hourly) == [iso(hour + h * HOUR_MS) for h in range(3)]
    assert [w["arithmetic_mean"] for w in hourly] == [1.0, 61.0, 121.0]
    # 3030 s is rounded up to whole slides: 3060 s.
    seeded = range(hour, hour + 150 * 60_000, 60_000)
    assert starts(rounded) == [iso(t) for t in seeded if t % 3_060_000 == 0]
    assert starts(every) == [iso(t) for t in seeded]


def test_cassandra_down_is_a_503_naming_it(settings: Settings) -> None:
    down = settings.model_copy(update={"cassandra_port": free_ports(1)[0]})
    with running_api(down) as base:
        response = get(base, "/candles/BTC")

    assert response.status_code == 503 and response.json()["backend"] == "cassandra"


def test_the_push_stream_sends_a_coins_current_candle_when_it_changes(seeded: Settings) -> None:
    write_ticks(seeded, [tick_row("BTC", 129.0, naive(MINUTE_MS - 1))])
    with (
        running_api(seeded) as base,
        listening(base, "candle", lambda candle: candle["close"] == 131.0) as received,
    ):
        write_candles(seeded, "BTC", "1m", MINUTE_MS, [130.0])
        write_ticks(seeded, [tick_row("BTC", 131.0, naive(MINUTE_MS + 5))])

    assert received == [
        {
            "symbol_coin": "BTC",
            "source": "simulated",
            "interval": "1m",
            "start": iso(MINUTE_MS),
            "end": iso(MINUTE_MS + 60_000),
            "open": 130.0,
            "high": 132.0,
            "low": 129.0,
            "close": 131.0,
            "tick_count": 10,
        }
    ]


FIXTURE_CHECK = HealthCheck.function_scoped_fixture  # one API serves every example
SOME_TIMES = st.one_of(
    st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-14))])),
    st.integers(FIRST_MS - 2 * HOUR_MS, MINUTE_MS + HOUR_MS).map(moment),
)


@examples(max_examples=60, deadline=None, suppress_health_check=[FIXTURE_CHECK])
@given(
    interval=st.sampled_from([*INTERVALS, "1w", ""]),
    since=st.none() | SOME_TIMES,
    until=st.none() | SOME_TIMES,
    limit=st.none() | st.integers(-1, 2**63),
)
def test_any_parameters_are_answered_with_candles_in_range_or_a_client_error(
    api: str,
    interval: str,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int | None,
) -> None:
    params = {"interval": interval, "since": since, "until": until, "limit": limit}
    sent = {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in params.items()}
    response = get(api, "/candles/BTC", **{k: v for k, v in sent.items() if v is not None})

    assert response.status_code in (200, 404, 422), response.text
    if response.status_code == 200:
        starts = [dt.datetime.fromisoformat(c["start"]) for c in response.json()]
        assert starts == sorted(starts) and len(starts) <= min(limit or 1000, MAX_LIMIT)
        assert since is None or starts[0] >= since
        assert until is None or starts[-1] < until
