"""The chaos results and table, from crafted ledgers, store checks and faults (no server).

Each tick belongs to the phase its ingest time falls in: before the first fault, or from
one fault's injection to the next one's. A tick lost by the broker, lost by us or
duplicated must show in its fault's row and fail the run; so must a wrong window or latest
row, a stray stored tick and a fault the pipeline never recovered from. A tick the topic
holds twice (resent) is shown and is no failure.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crypto_platform.chaos.compare import (
    Ledger,
    StoreCheck,
    TickKey,
    check_broker,
    check_store,
    ledger_of,
)
from crypto_platform.chaos.faults import FAULTS, select
from crypto_platform.chaos.recompute import Expected, WindowValue, expected
from crypto_platform.chaos.report import BASELINE, FaultRun, markdown, results, write
from crypto_platform.chaos.windows_check import (
    LatestCheck,
    WindowCheck,
    compare_latest,
    compare_windows,
)
from crypto_platform.errors import ConfigurationError
from crypto_platform.ticks import Tick

T0_MS = int(dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)
OUTAGE_S = 20.0
WINDOW_S, SLIDE_S = 300, 60

# One tick ingested every 10 s for three minutes: six before the first fault (injected at
# T0+60s), six in the first fault's phase, six in the second's (injected at T0+120s).
TICKS = [
    Tick.build(
        source="simulated",
        symbol="BTC",
        price=65_000.0 + i,
        event_time_ms=T0_MS + i * 10_000 - 400,
        ingest_time_ms=T0_MS + i * 10_000,
    )
    for i in range(18)
]
KILL_SINK, STOP_MONGODB = select(["kill-sink", "stop-mongodb"])
FAULT_RUNS = [
    FaultRun(KILL_SINK.key, KILL_SINK.label(OUTAGE_S), 1, T0_MS + 60_000, T0_MS + 60_100, 5.0),
    FaultRun(
        STOP_MONGODB.key, STOP_MONGODB.label(OUTAGE_S), 1, T0_MS + 120_000, T0_MS + 140_000, 25.0
    ),
]


def key(tick: Tick) -> TickKey:
    return (tick.source, tick.symbol, tick.event_time_ms)


def ledger(ticks: list[Tick] = TICKS) -> Ledger:
    return ledger_of(tick.to_json() for tick in ticks)


def acknowledged() -> dict[TickKey, int]:
    """The producers' ledgers: every tick acknowledged."""
    return {key(tick): tick.ingest_time_ms for tick in TICKS}


def stored_once() -> Counter[TickKey]:
    return Counter(key(tick) for tick in TICKS)


def recomputed() -> Expected:
    frame = pd.DataFrame(
        [(t.source, t.symbol, t.event_time_ms, t.price) for t in TICKS],
        columns=["source", "symbol", "event_time_ms", "price"],
    )
    return expected(frame, WINDOW_S, SLIDE_S)


def clean_windows() -> WindowCheck:
    windows = recomputed().windows
    return compare_windows(windows, dict(windows))


def clean_latest() -> LatestCheck:
    want = recomputed()
    return compare_latest(want, dict(want.latest_prices), dict(want.latest_windows))


def run(
    *,
    topic: Ledger | None = None,
    mongodb: Counter[TickKey] | None = None,
    cassandra: Counter[TickKey] | None = None,
    windows: WindowCheck | None = None,
    latest: LatestCheck | None = None,
    faults: list[FaultRun] | None = None,
) -> dict[str, Any]:
    """The results of a run with every tick in a producer's ledger.

    The topic and the stores hold what is given, by default every tick once.
    """
    topic = ledger() if topic is None else topic
    broker = check_broker(acknowledged(), topic)
    stores: dict[str, StoreCheck] = {
        name: check_store(topic, broker.acknowledged, stored_once() if copies is None else copies)
        for name, copies in (("mongodb", mongodb), ("cassandra", cassandra))
    }
    return results(
        options={
            "rate": 100.0,
            "phase_seconds": 60.0,
            "outage_seconds": OUTAGE_S,
            "faults": [fault.key for fault in FAULT_RUNS],
            "window_seconds": WINDOW_S,
            "slide_seconds": SLIDE_S,
        },
        topic=topic,
        broker=broker,
        faults=FAULT_RUNS if faults is None else faults,
        stores=stores,
        windows=clean_windows() if windows is None else windows,
        latest=clean_latest() if latest is None else latest,
        restarts={
            "producer": {"restarts": 0, "failures": 0, "leftovers": 0},
            "sink": {"restarts": 1, "failures": 0, "leftovers": 0},
            "spark-driver": {"restarts": 0, "failures": 1, "leftovers": 2},
        },
    )


def row(result: dict[str, Any], fault: str) -> dict[str, Any]:
    (found,) = [row for row in result["faults"] if row["fault"] == fault]
    return found


def table_row(table: str, fault: str) -> str:
    (found,) = [line for line in table.splitlines() if line.startswith(f"| {fault} |")]
    return found


def test_a_clean_run_passes_with_every_tick_in_its_phase() -> None:
    result = run()

    assert result["passed"] is True
    counts = ("ticks", "lost_by_broker", "lost_by_us", "duplicated", "resent")
    assert [(r["fault"], *(r[c] for c in counts)) for r in result["faults"]] == [
        (BASELINE, 6, 0, 0, 0, 0),
        ("SIGKILL MongoDB sink (restarted)", 6, 0, 0, 0, 0),
        ("MongoDB stopped for 20 s", 6, 0, 0, 0, 0),
    ]
    assert row(result, "MongoDB stopped for 20 s")["ticks_during"] == 3  # T0+120s ... T0+145s
    assert result["topic"] == {"messages": 18, "distinct_ticks": 18, "resent_copies": 0,
                               "invalid": 0}  # fmt: skip
    assert result["broker"] == {"acknowledged": 18, "lost_by_broker": 0, "not_in_ledger": 0,
                                "lost_examples": []}  # fmt: skip
    assert result["windows"]["wrong"] == 0 and result["latest"] == {
        "checked": 2, "wrong": 0, "wrong_examples": []
    }  # fmt: skip
    table = markdown(result)
    assert "Result: PASSED." in table
    assert table_row(table, "SIGKILL MongoDB sink (restarted)") == (
        "| SIGKILL MongoDB sink (restarted) | 1 | 1 | 0 | 0 | 0 | 0 | 5.0 |"
    )
    assert "mongodb: 0 lost, 0 duplicated, 0 never acknowledged" in table
    assert "spark-driver 0 restarts (1 after failing by itself)" in table


def test_a_lost_tick_fails_the_run_in_its_faults_row() -> None:
    mongodb = stored_once()
    del mongodb[key(TICKS[13])]  # ingested at T0+130s: during the MongoDB outage

    result = run(mongodb=mongodb)

    assert result["passed"] is False
    outage = row(result, "MongoDB stopped for 20 s")
    assert (outage["lost_by_us"], outage["lost_mongodb"], outage["lost_cassandra"]) == (1, 1, 0)
    assert outage["duplicated"] == 0 and outage["lost_by_broker"] == 0
    assert all(r["lost_by_us"] == 0 for r in result["faults"] if r is not outage)
    assert result["stores"]["mongodb"]["lost_examples"] == [TICKS[13].identity]
    table = markdown(result)
    assert "Result: FAILED." in table
    assert (
        table_row(table, "MongoDB stopped for 20 s")
        == "| MongoDB stopped for 20 s | 1 | 3 | 0 | 1 | 0 | 0 | 25.0 |"
    )
    assert "mongodb: 1 lost, 0 duplicated" in table


def test_a_tick_lost_from_both_stores_counts_once_in_its_row() -> None:
    both = stored_once()
    del both[key(TICKS[7])]  # ingested at T0+70s: after the sink was killed

    result = run(mongodb=both, cassandra=both)

    sink_row = row(result, "SIGKILL MongoDB sink (restarted)")
    lost = (sink_row["lost_by_us"], sink_row["lost_mongodb"], sink_row["lost_cassandra"])
    assert lost == (1, 1, 1)
    assert result["passed"] is False


def test_a_duplicated_tick_fails_the_run_in_its_phases_row() -> None:
    cassandra = stored_once()
    cassandra[key(TICKS[2])] += 1  # ingested at T0+20s: before the first fault

    result = run(cassandra=cassandra)

    assert result["passed"] is False
    baseline = row(result, BASELINE)
    assert (baseline["duplicated"], baseline["duplicated_cassandra"]) == (1, 1)
    assert baseline["lost_by_us"] == 0
    assert result["stores"]["cassandra"]["duplicated"] == 1
    assert table_row(markdown(result), BASELINE) == f"| {BASELINE} | - | 6 | 0 | 0 | 1 | 0 | - |"


def test_a_tick_lost_by_the_broker_fails_the_run_in_its_faults_row() -> None:
    # Acknowledged (in the ledger) at T0+125s, gone from the topic after the run; the sink
    # had stored it, so the stores do not call it unknown.
    gone = TICKS[12]

    result = run(topic=ledger([tick for tick in TICKS if tick is not gone]))

    assert result["passed"] is False
    outage = row(result, "MongoDB stopped for 20 s")
    assert (outage["lost_by_broker"], outage["lost_by_us"]) == (1, 0)
    assert result["broker"]["lost_examples"] == [gone.identity]
    assert result["stores"]["mongodb"]["not_acknowledged"] == 0
    assert "1 lost by the broker" in markdown(result)


def test_a_tick_the_topic_holds_twice_is_resent_not_a_failure() -> None:
    result = run(topic=ledger([*TICKS, TICKS[8]]))  # resent after a producer reset

    assert result["passed"] is True
    assert row(result, "SIGKILL MongoDB sink (restarted)")["resent"] == 1
    assert result["topic"]["resent_copies"] == 1


def test_a_wrong_window_mean_fails_the_run() -> None:
    want = recomputed().windows
    stored = dict(want)
    window = min(stored)
    right = stored[window]
    stored[window] = WindowValue(
        right.tick_count, right.arithmetic_mean, right.geometric_mean * (1 + 1e-6),
        right.harmonic_mean,
    )  # fmt: skip

    result = run(windows=compare_windows(want, stored))

    assert result["passed"] is False
    assert all(r["lost_by_us"] == 0 and r["duplicated"] == 0 for r in result["faults"])
    assert result["windows"]["wrong"] == 1
    example = result["windows"]["wrong_examples"][0]
    assert example["stored"]["geometric_mean"] != example["expected"]["geometric_mean"]
    table = markdown(result)
    assert "Result: FAILED." in table
    assert f"{result['windows']['checked']:,} checked, 1 with a wrong tick count or mean" in table


def test_a_wrong_latest_row_fails_the_run() -> None:
    want = recomputed()
    event_ms, price = want.latest_prices["BTC"]

    result = run(latest=compare_latest(want, {"BTC": (event_ms, price + 1)},
                                       dict(want.latest_windows)))  # fmt: skip

    assert result["passed"] is False
    assert result["latest"]["wrong_examples"] == [
        {"table": "latest_prices", "symbol": "BTC", "stored": (event_ms, price + 1),
         "expected": (event_ms, price)}
    ]  # fmt: skip
    assert "latest rows: 2 checked, 1 wrong" in markdown(result)


def test_each_run_of_a_repeated_fault_has_its_own_row() -> None:
    again = FaultRun(KILL_SINK.key, KILL_SINK.label(OUTAGE_S), 2, T0_MS + 150_000,
                     T0_MS + 150_100, 4.0)  # fmt: skip

    result = run(faults=[*FAULT_RUNS, again])

    sink_rows = [r for r in result["faults"] if r["fault"] == KILL_SINK.label(OUTAGE_S)]
    assert [(r["run"], r["ticks"]) for r in sink_rows] == [(1, 6), (2, 3)]
    table = markdown(result).splitlines()
    assert sum(line.startswith(f"| {KILL_SINK.label(OUTAGE_S)} | 2 |") for line in table) == 1


def test_a_stored_tick_never_acknowledged_fails_the_run() -> None:
    mongodb = stored_once()
    mongodb[("simulated", "BTC", T0_MS + 1)] = 1

    result = run(mongodb=mongodb)

    assert result["passed"] is False
    assert result["stores"]["mongodb"]["not_acknowledged"] == 1
    assert all(r["lost_by_us"] == 0 and r["duplicated"] == 0 for r in result["faults"])


def test_a_fault_never_recovered_from_fails_the_run() -> None:
    never = FaultRun(
        KILL_SINK.key, KILL_SINK.label(OUTAGE_S), 1, T0_MS + 60_000, T0_MS + 60_100, None
    )

    result = run(faults=[never, FAULT_RUNS[1]])

    assert result["passed"] is False
    assert row(result, KILL_SINK.label(OUTAGE_S))["ticks_during"] == 12  # all to the end
    assert "| not recovered |" in table_row(markdown(result), KILL_SINK.label(OUTAGE_S))


def test_write_puts_the_json_and_the_table_side_by_side(tmp_path: Path) -> None:
    result = run()

    json_path, table_path = write(result, tmp_path / "results")

    assert json.loads(json_path.read_text()) == result
    assert table_path.read_text() == markdown(result)
    assert (json_path.name, table_path.name) == ("chaos.json", "chaos.md")


def test_faults_are_chosen_by_key_in_the_order_given() -> None:
    assert [fault.key for fault in select(["stop-cassandra", "kill-producer"])] == [
        "stop-cassandra",
        "kill-producer",
    ]
    assert select(None) == list(FAULTS)
    with pytest.raises(ConfigurationError, match="unknown fault kill-kafka: choose from kill-"):
        select(["kill-kafka"])
