"""`auto` against the fake internet: a fallback at the start, the way back, and staying put."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from crypto_platform.resilience import RetryPolicy
from crypto_platform.settings import load_settings
from crypto_platform.sources import build_source, simulated_mark
from crypto_platform.sources.binance import BinanceRestSource
from crypto_platform.sources.fallback import FallbackSource
from crypto_platform.sources.simulated import SimulatedSource
from crypto_platform.ticks import Tick, now_ms
from crypto_platform_tests.fake_internet import (
    FakeApi,
    Reply,
    Request,
    binance_ticker,
    coinranking_coin,
    coinranking_page,
    fake_api,
)

TICKER = "/api/v3/ticker/24hr"
COINS = "/coins"
SYMBOLS = ["BTC", "ETH"]
FAST = RetryPolicy(backoff_initial=0.01, backoff_max=0.05)


def binance_now(request: Request) -> Reply:
    at = now_ms()
    return Reply(
        body=[binance_ticker("BTCUSDT", "64000.1", at), binance_ticker("ETHUSDT", "3200.5", at)]
    )


def coinranking_now(request: Request) -> Reply:
    return Reply(body=coinranking_page([coinranking_coin(s, "100.5") for s in SYMBOLS]))


class Outage:
    """One path of a fake API: answered like the real one while `up`, else HTTP 503."""

    def __init__(self, api: FakeApi, path: str, answer: Callable[[Request], Reply]) -> None:
        self.up = False
        self._answer = answer
        api.answer(path, self)

    def __call__(self, request: Request) -> Reply:
        return self._answer(request) if self.up else Reply(503, {"msg": "down"})


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with fake_api() as server:
        yield server


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    """Stops every source loop of the test, at its end or after 60 s at most."""
    event = threading.Event()
    timer = threading.Timer(60.0, event.set)
    timer.start()
    yield event
    event.set()
    timer.cancel()


def ticks_until(stream: Iterator[list[Tick]], done: Callable[[list[Tick]], bool]) -> list[Tick]:
    """Ticks from `stream` up to and including the first batch for which `done` holds."""
    seen: list[Tick] = []
    for batch in stream:
        seen.extend(batch)
        if done(batch):
            return seen
    raise AssertionError(f"the source stopped first, after {len(seen)} ticks")


def sources_of(ticks: list[Tick]) -> list[str]:
    """The sources of `ticks` in order, each run of one source once."""
    runs: list[str] = []
    for tick in ticks:
        if not runs or runs[-1] != tick.source:
            runs.append(tick.source)
    return runs


def test_auto_goes_back_to_binance_once_it_answers_a_reprobe(
    api: FakeApi, tmp_path: Path, stop: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="crypto_platform.sources")
    binance = Outage(api, TICKER, binance_now)
    settings = load_settings(
        binance_base_url=api.url,
        coinranking_api_key=None,
        symbols=SYMBOLS,
        auto_reprobe_s=1.0,
        data_dir=tmp_path,
    )

    source = build_source(settings, source="auto", interval=0.1)
    assert source.name == "simulated"
    assert "NO LIVE SOURCE ANSWERED" in caplog.text
    stream = source.batches(stop)
    down_until = time.monotonic() + 2.5  # two re-probes or so while Binance is down
    simulated = ticks_until(stream, lambda batch: time.monotonic() > down_until)
    binance.up = True
    switching = ticks_until(stream, lambda batch: batch[0].source == "binance")
    probes = [hit.at for hit in api.hits(TICKER)]  # the first batch is the probe's ticks
    after = ticks_until(stream, lambda batch: len(api.hits(TICKER)) > len(probes) + 3)
    source.close()

    assert sources_of(simulated + switching + after) == ["simulated", "binance"]
    assert [t.price for t in after[:2]] == [64000.1, 3200.5]
    assert source.name == "binance"
    assert source.stats.switches == 1
    assert "still on simulated: binance: HTTP 503" in caplog.text
    assert "switched from simulated to binance: binance answered a re-probe" in caplog.text
    assert len(probes) >= 3  # the start, then at least one failed re-probe, then the answer
    assert min(b - a for a, b in pairwise(probes)) >= 0.9  # 1 s apart
    # The simulator reserved every event time it used: a later simulator starts after them.
    simulated_ticks = [t for t in simulated + switching if t.source == "simulated"]
    mark = int(simulated_mark(settings).read_text())
    assert mark >= max(t.event_time_ms for t in simulated_ticks)


def test_auto_leaves_coinranking_for_binance_once_binance_answers(
    api: FakeApi, tmp_path: Path, stop: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="crypto_platform.sources")
    binance = Outage(api, TICKER, binance_now)
    coinranking = Outage(api, COINS, coinranking_now)
    coinranking.up = True
    settings = load_settings(
        binance_base_url=api.url,
        coinranking_base_url=api.url,
        coinranking_api_key="key",
        symbols=SYMBOLS,
        auto_reprobe_s=1.0,
        data_dir=tmp_path,
    )

    source = build_source(settings, source="auto", interval=0.1)
    assert source.name == "coinranking"
    stream = source.batches(stop)
    ranked = ticks_until(stream, lambda batch: True)
    binance.up = True
    switching = ticks_until(stream, lambda batch: batch[0].source == "binance")
    polls_of_coinranking = len(api.hits(COINS))
    after = ticks_until(stream, lambda batch: len(api.hits(TICKER)) > 5)
    source.close()

    assert sources_of(ranked + switching + after) == ["coinranking", "binance"]
    assert source.stats.switches == 1
    assert len(api.hits(COINS)) == polls_of_coinranking  # left, not polled any more
    assert "switched from coinranking to binance" in caplog.text
    assert not (tmp_path / "simulated-high-water-mark").exists()  # never simulated


def fast_auto(api: FakeApi, tmp_path: Path, reprobe_s: float, **http: object) -> FallbackSource:
    """`auto` over Binance and the simulator, with quick retries (the test's time is short)."""

    def make(**probe: object) -> BinanceRestSource:
        return BinanceRestSource(SYMBOLS, api.url, 0.05, **{"policy": FAST, **http, **probe})

    return FallbackSource(
        SYMBOLS,
        [make],
        lambda: SimulatedSource(SYMBOLS, rate=20.0, state_file=tmp_path / "mark"),
        reprobe_s=reprobe_s,
        probe_timeout_s=0.5,
    )


def test_a_live_source_that_fails_again_is_retried_not_left(
    api: FakeApi, tmp_path: Path, stop: threading.Event
) -> None:
    binance = Outage(api, TICKER, binance_now)
    source = fast_auto(api, tmp_path, reprobe_s=0.2)
    stream = source.batches(stop)
    simulated = ticks_until(stream, lambda batch: True)
    binance.up = True
    live = ticks_until(stream, lambda batch: batch[0].source == "binance")

    binance.up = False

    def back_up_after_failed_polls() -> None:
        while source.stats.failed_requests < 3 and not stop.is_set():
            time.sleep(0.02)
        binance.up = True

    threading.Thread(target=back_up_after_failed_polls, daemon=True).start()
    down_at = time.monotonic()
    again = ticks_until(stream, lambda batch: True)  # nothing comes while Binance is down
    source.close()

    assert sources_of(simulated + live + again) == ["simulated", "binance"]
    assert source.stats.failed_requests >= 3
    assert time.monotonic() - down_at > 0.2  # longer than a re-probe interval, yet no switch
    assert source.stats.switches == 1
    assert source.name == "binance"


def test_a_stop_during_a_reprobe_waits_no_longer_than_the_probe_timeout(
    api: FakeApi, tmp_path: Path, stop: threading.Event
) -> None:
    stopped_at: list[float] = []

    def hang_on_the_reprobe(request: Request) -> Reply:
        if len(api.hits(TICKER)) >= 2:  # the first re-probe (the start's probe was the first)
            stopped_at.append(time.monotonic())
            stop.set()
        return Reply(503, delay=5.0)

    api.answer(TICKER, hang_on_the_reprobe)
    source = fast_auto(api, tmp_path, reprobe_s=0.2)
    assert source.name == "simulated"

    ticks = [tick for batch in source.batches(stop) for tick in batch]
    ended_at = time.monotonic()
    source.close()

    assert ticks and {t.source for t in ticks} == {"simulated"}
    assert ended_at - stopped_at[0] < 0.5 + 1.0  # the probe's timeout, and some slack
    assert source.stats.switches == 0
