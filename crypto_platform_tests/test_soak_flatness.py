"""The soak's flatness judgement over recorded per-minute figures: data in, verdict out."""

from __future__ import annotations

from crypto_platform.bench.flatness import Minute, judge, periods, state_fill_s


def minutes(
    count: int, *, batch_s: float = 0.8, batch_growth: float = 0.0, rss_growth: float = 0.0
) -> list[Minute]:
    """`count` minutes of 60 batches; state rows fill for 15 minutes then level off."""
    return [
        Minute(
            minute=i + 1,
            batch_s=[batch_s * (1 + batch_growth * i)] * 60,
            state_rows=min(i + 1, 15) * 60_000,
            rss_mib={
                "Spark JVM": 1000.0 * (1 + rss_growth * i),
                "sink": 80.0,
                "kafka": 50.0 * (i + 1),  # a local server: recorded, not judged
            },
        )
        for i in range(count)
    ]


def test_a_flat_30_minute_run_passes_every_criterion() -> None:
    verdict = judge(minutes(30), state_fill_minutes=15)
    assert verdict["passed"] is True
    assert verdict["batch_p50"]["ratio"] == 1.0
    # Judged once the state has filled: minutes 16-20 against 26-30.
    assert verdict["batch_p50"]["compared"].startswith("minutes 16-20 (the first five after")
    assert verdict["state_rows"]["compared"].startswith("minutes 16-20")
    assert verdict["state_rows"]["passed"] is True
    assert verdict["memory"]["processes"]["kafka"]["judged"] is False
    assert verdict["memory"]["processes"]["kafka"]["passed"] is None


def test_slower_batches_fail_beyond_25_percent() -> None:
    # 2 % slower each minute: minutes 26-30 are ~15 % slower than 16-20; 5 %: ~27 %.
    assert judge(minutes(30, batch_growth=0.02), state_fill_minutes=15)["passed"] is True
    verdict = judge(minutes(30, batch_growth=0.05), state_fill_minutes=15)
    assert verdict["batch_p50"]["passed"] is False
    assert verdict["passed"] is False


def test_memory_growth_beyond_10_percent_fails_for_that_process_alone() -> None:
    verdict = judge(minutes(30, rss_growth=0.02), state_fill_minutes=15)
    processes = verdict["memory"]["processes"]
    assert processes["Spark JVM"]["passed"] is False
    assert processes["Spark JVM"]["ratio"] > 1.1
    assert processes["sink"]["passed"] is True
    assert verdict["passed"] is False


def test_state_rows_still_growing_after_the_fill_fail() -> None:
    run = minutes(30)
    for i, minute in enumerate(run):
        minute.state_rows = (i + 1) * 60_000  # never levels off
    verdict = judge(run, state_fill_minutes=15)
    assert verdict["state_rows"]["passed"] is False
    assert verdict["passed"] is False


def test_a_short_run_compares_halves_and_leaves_the_state_unjudged() -> None:
    verdict = judge(minutes(8), state_fill_minutes=15)
    assert verdict["batch_p50"]["compared"].startswith("halves: minutes 7 against 8")
    assert verdict["state_rows"]["passed"] is None
    assert "not judged" in verdict["state_rows"]["compared"]
    assert verdict["passed"] is True  # what was judged is flat


def test_a_three_minute_run_cuts_the_warm_up_to_one_minute() -> None:
    verdict = judge(minutes(3), state_fill_minutes=1)
    assert verdict["batch_p50"]["compared"] == (
        "halves: minutes 2 against 3 (the run is shorter than 1 + 10 minutes); warm-up cut to 1"
    )


def test_periods_and_the_state_fill_time() -> None:
    chosen = periods(12, 2)
    assert chosen is not None
    assert (chosen.baseline, chosen.final) == (range(2, 7), range(7, 12))
    assert periods(3, 2) is None
    # Window 300 s, watermark 600 s: a window's row lives window + watermark.
    assert state_fill_s(300, 600) == 900
