"""The chaos run's tick-by-tick comparison, fed crafted ledgers, topics and stores (no server).

A tick the broker acknowledged and lost, a tick lost from a store, a tick stored twice, a
stored tick never acknowledged, a window with a wrong count or mean and a wrong latest row
must each be reported; a clean run reports none.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from crypto_platform.chaos.compare import (
    Ledger,
    StoreCheck,
    TickKey,
    check_broker,
    check_store,
    ledger_of,
    read_ledgers,
)
from crypto_platform.chaos.recompute import Expected, WindowValue, expected
from crypto_platform.chaos.windows_check import compare_latest, compare_windows
from crypto_platform.streaming.ack_ledger import AckLedger
from crypto_platform.ticks import Tick

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
T0_MS = int(T0.timestamp() * 1000)
T0_S = T0_MS // 1000


def tick(symbol: str, event_ms: int, *, ingest_delay_ms: int = 800) -> Tick:
    return Tick.build(
        source="simulated",
        symbol=symbol,
        price=100.0 + event_ms % 1000,
        event_time_ms=event_ms,
        ingest_time_ms=event_ms + ingest_delay_ms,
    )


def key(sent: Tick) -> TickKey:
    return (sent.source, sent.symbol, sent.event_time_ms)


TOPIC = [tick(symbol, T0_MS + i * 7_000) for symbol in ("BTC", "ETH") for i in range(10)]


def topic_ledger() -> Ledger:
    return ledger_of(sent.to_json() for sent in TOPIC)


def stored_once() -> Counter[TickKey]:
    """A store holding every tick of the topic exactly once."""
    return Counter(key(sent) for sent in TOPIC)


def check_store_of(ledger: Ledger, copies: Counter[TickKey]) -> StoreCheck:
    """The store against a topic holding every acknowledged tick."""
    return check_store(ledger, ledger.ingest_ms.keys(), copies)


def test_the_ledger_holds_each_tick_once_and_counts_resent_and_invalid_messages() -> None:
    resent = tick("BTC", TOPIC[2].event_time_ms, ingest_delay_ms=5_000)  # after a producer crash
    values = [sent.to_json() for sent in TOPIC] + [resent.to_json(), b"<html>502</html>", b"", None]

    ledger = ledger_of(values)

    assert ledger.messages == len(TOPIC) + 4
    assert set(ledger.ingest_ms) == {key(sent) for sent in TOPIC}
    assert ledger.resent == Counter({key(resent): 1})
    assert ledger.invalid == 3
    assert ledger.ingest_ms[key(resent)] == resent.ingest_time_ms  # the copy read last


def test_a_store_holding_every_tick_once_reports_nothing() -> None:
    check = check_store_of(topic_ledger(), stored_once())

    assert check.summary() == {
        "lost": 0,
        "duplicated": 0,
        "not_acknowledged": 0,
        "lost_examples": [],
    }


def test_a_tick_the_producer_resent_but_the_store_holds_once_is_no_duplicate() -> None:
    ledger = ledger_of([sent.to_json() for sent in TOPIC] + [TOPIC[0].to_json()])

    check = check_store_of(ledger, stored_once())

    assert check.summary()["duplicated"] == 0 and check.summary()["lost"] == 0


def test_a_lost_tick_is_reported_by_its_identity() -> None:
    copies = stored_once()
    lost = TOPIC[13]  # ETH, the fourth
    del copies[key(lost)]

    check = check_store_of(topic_ledger(), copies)

    assert check.lost == {key(lost)}
    assert check.summary() == {
        "lost": 1,
        "duplicated": 0,
        "not_acknowledged": 0,
        "lost_examples": [lost.identity],
    }


def test_lost_examples_are_a_few_in_identity_order() -> None:
    copies = Counter({key(sent): 1 for sent in TOPIC if sent.symbol == "ETH"})  # BTC all lost

    summary = check_store_of(topic_ledger(), copies).summary()

    assert summary["lost"] == 10
    btc = sorted((sent for sent in TOPIC if sent.symbol == "BTC"), key=key)
    assert summary["lost_examples"] == [sent.identity for sent in btc[:5]]


def test_a_duplicated_tick_is_reported_with_its_extra_copies() -> None:
    copies = stored_once()
    copies[key(TOPIC[4])] += 2  # three documents of one tick

    check = check_store_of(topic_ledger(), copies)

    assert check.duplicated == {key(TOPIC[4]): 2}
    assert check.lost == set()
    assert check.summary()["duplicated"] == 2


def test_a_stored_tick_never_acknowledged_is_reported() -> None:
    copies = stored_once()
    copies[("simulated", "SOL", T0_MS)] = 1

    check = check_store_of(topic_ledger(), copies)

    assert check.unknown == 1
    assert check.summary()["not_acknowledged"] == 1
    assert check.lost == set() and check.duplicated == {}


def test_the_ledgers_union_is_read_and_a_line_cut_by_a_kill_is_skipped(tmp_path: Path) -> None:
    first = AckLedger(tmp_path / "producer-0.ledger")
    for sent in TOPIC[:12]:
        first.acknowledged(sent)
    first.close()
    (tmp_path / "producer-1.ledger").write_text(
        "".join(f"{sent.identity} {sent.ingest_time_ms}\n" for sent in TOPIC[10:]) + "simulated:E"
    )

    acknowledged = read_ledgers(sorted(tmp_path.glob("*.ledger")))

    assert acknowledged == {key(sent): sent.ingest_time_ms for sent in TOPIC}


def test_a_tick_the_broker_acknowledged_and_lost_is_reported() -> None:
    gone = TOPIC[15]
    topic = ledger_of(sent.to_json() for sent in TOPIC if sent is not gone)
    only_in_topic = TOPIC[3]  # its producer was killed before its ledger line was written
    ledgers = {key(sent): sent.ingest_time_ms for sent in TOPIC if sent is not only_in_topic}

    check = check_broker(ledgers, topic)

    assert check.lost == {key(gone)}
    assert check.not_in_ledger == 1
    assert set(check.acknowledged) == {key(sent) for sent in TOPIC}
    assert check.summary()["lost_examples"] == [gone.identity]
    # The sink stored it before the broker lost it: neither lost by us nor unknown.
    assert check_store(topic, check.acknowledged.keys(), stored_once()).summary() == {
        "lost": 0, "duplicated": 0, "not_acknowledged": 0, "lost_examples": []
    }  # fmt: skip


# Windows of 300 s sliding by 60 s, as the job's defaults. A tick at T0+10s is in the five
# windows starting T0-240s ... T0; one at T0+70s in the five starting T0-180s ... T0+60s.
WINDOW_S, SLIDE_S = 300, 60
PRICES = (100.0, 400.0)
TWO_TICKS = [tick("BTC", T0_MS + 10_000), tick("BTC", T0_MS + 70_000)]
COUNTS = {-240: 1, -180: 2, -120: 2, -60: 2, 0: 2, 60: 1}  # window start - T0 (s): ticks


def two_tick_expected() -> Expected:
    frame = pd.DataFrame(
        [
            ("simulated", "BTC", sent.event_time_ms, price)
            for sent, price in zip(TWO_TICKS, PRICES, strict=True)
        ],
        columns=["source", "symbol", "event_time_ms", "price"],
    )
    return expected(frame, WINDOW_S, SLIDE_S)


def test_each_window_is_recomputed_with_its_count_and_three_means() -> None:
    windows = two_tick_expected().windows

    assert {window: value.tick_count for window, value in windows.items()} == {
        ("BTC", "simulated", T0_S + offset): n for offset, n in COUNTS.items()
    }
    both = windows[("BTC", "simulated", T0_S)]
    assert math.isclose(both.arithmetic_mean, 250.0)
    assert math.isclose(both.geometric_mean, 200.0)
    assert math.isclose(both.harmonic_mean, 160.0)
    assert windows[("BTC", "simulated", T0_S + 60)].arithmetic_mean == 400.0


def test_the_latest_rows_are_the_newest_tick_and_the_current_window() -> None:
    want = two_tick_expected()

    assert want.latest_prices == {"BTC": (TWO_TICKS[1].event_time_ms, 400.0)}
    start, value = want.latest_windows[("BTC", "simulated")]
    assert start == T0_S - 180  # holds the newest tick and started earliest
    assert value.tick_count == 2


def test_windows_matching_the_recomputation_report_nothing() -> None:
    windows = two_tick_expected().windows

    check = compare_windows(windows, dict(windows))

    assert check.summary() == {"checked": 6, "wrong": 0, "wrong_examples": []}


def test_a_window_with_a_wrong_count_is_reported_with_both_values() -> None:
    windows = two_tick_expected().windows
    stored = dict(windows)
    stored[("BTC", "simulated", T0_S)] = replace(windows[("BTC", "simulated", T0_S)], tick_count=3)

    check = compare_windows(windows, stored)

    key = ("BTC", "simulated", T0_S)
    assert check.wrong == [(key, stored[key], windows[key])]
    (example,) = check.summary()["wrong_examples"]  # type: ignore[misc]
    assert example["window_start"] == "2026-01-05T12:00:00+00:00"
    assert (example["stored"]["tick_count"], example["expected"]["tick_count"]) == (3, 2)


def test_a_mean_off_by_more_than_1e_9_relative_is_reported_and_within_it_is_not() -> None:
    windows = two_tick_expected().windows
    right = windows[("BTC", "simulated", T0_S)]
    for name in ("arithmetic_mean", "geometric_mean", "harmonic_mean"):
        near = replace(right, **{name: getattr(right, name) * (1 + 1e-10)})
        far = replace(right, **{name: getattr(right, name) * (1 + 1e-8)})

        assert compare_windows(windows, {**windows, ("BTC", "simulated", T0_S): near}).wrong == []
        wrong = compare_windows(windows, {**windows, ("BTC", "simulated", T0_S): far}).wrong
        assert wrong == [(("BTC", "simulated", T0_S), far, right)], name


def test_a_missing_window_and_a_stray_one_are_reported() -> None:
    windows = two_tick_expected().windows
    stored = dict(windows)
    del stored[("BTC", "simulated", T0_S + 60)]
    stray = WindowValue(1, 5.0, 5.0, 5.0)
    stored[("ETH", "simulated", T0_S)] = stray

    check = compare_windows(windows, stored)

    assert check.checked == 7
    assert check.wrong == [
        (("BTC", "simulated", T0_S + 60), None, windows[("BTC", "simulated", T0_S + 60)]),
        (("ETH", "simulated", T0_S), stray, None),
    ]


def test_a_wrong_latest_aggregate_and_a_missing_latest_price_are_reported() -> None:
    want = two_tick_expected()
    start, value = want.latest_windows[("BTC", "simulated")]
    older = (start + 60, want.windows[("BTC", "simulated", start + 60)])  # a later-starting window

    check = compare_latest(want, {}, {("BTC", "simulated"): older})

    assert check.checked == 2
    assert [(w["table"], w["stored"]) for w in check.wrong] == [
        ("latest_prices", None),
        ("latest_aggregates", ("2026-01-05T11:58:00+00:00", asdict(older[1]))),
    ]
    assert check.wrong[1]["expected"] == ("2026-01-05T11:57:00+00:00", asdict(value))
    assert compare_latest(want, dict(want.latest_prices), dict(want.latest_windows)).wrong == []
