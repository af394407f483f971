"""The soak's results: soak.json (every minute's figures and the verdict) and soak.md."""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from crypto_platform.bench.fixtures import median, percentile
from crypto_platform.bench.flatness import WARMUP_MINUTES, judge
from crypto_platform.bench.soak import SoakRun
from crypto_platform.chaos.report import write as write_results


def results(run: SoakRun) -> dict[str, Any]:
    """Options, each minute's figures (with its batch p50 and p99), the verdict, and when."""
    verdict = judge(run.minutes, state_fill_minutes=run.options["state_fill_minutes"])
    rows = [
        {
            **asdict(m),
            "batches": len(m.batch_s),
            "batch_p50_s": median(m.batch_s) if m.batch_s else None,
            "batch_p99_s": percentile(m.batch_s, 0.99) if m.batch_s else None,
        }
        for m in run.minutes
    ]
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "options": run.options,
        "per_minute": rows,
        "verdict": verdict,
        "passed": verdict["passed"],
    }


def _figure(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _outcome(passed: bool | None) -> str:
    return {True: "met", False: "FAILED", None: "not judged"}[passed]


def markdown(result: dict[str, Any]) -> str:
    o, rows, v = result["options"], result["per_minute"], result["verdict"]
    lines = [
        f"Soak run {result['generated_at']}: {o['minutes']} minutes at {o['rate']:,.0f} ticks/s "
        f"({o['symbols']} symbols) on {result['cores']} cores; Spark trigger {o['trigger_s']} s, "
        f"window {o['window_s']} s sliding by {o['slide_s']} s, watermark {o['watermark_s']} s; "
        f"sampled every {o['sample_s']} s. Verdict: {'flat' if result['passed'] else 'NOT FLAT'}.",
        "",
        "| minute | batches | batch p50 s | batch p99 s | state rows | produced | sink lag | "
        "Spark lag |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['minute']} | {r['batches']} | {_figure(r['batch_p50_s'])} | "
        f"{_figure(r['batch_p99_s'])} | {_figure(r['state_rows'])} | {_figure(r['produced'])} | "
        f"{_figure(r['sink_lag'])} | {_figure(r['spark_lag'])} |"
        for r in rows
    ]
    names = list(v["memory"]["processes"])
    lines += [
        "",
        "| minute | " + " | ".join(f"{name} MiB" for name in names) + " |",
        "| ---: |" + " ---: |" * len(names),
    ]
    lines += [
        f"| {r['minute']} | " + " | ".join(_figure(r["rss_mib"].get(n), 0) for n in names) + " |"
        for r in rows
    ]
    lines += ["", "| criterion | compared | baseline | final | ratio | verdict |"]
    lines += ["| --- | --- | ---: | ---: | ---: | --- |"]
    for key in ("batch_p50", "state_rows"):
        c = v[key]
        lines.append(
            f"| {c['criterion']} | {c['compared']} | {_figure(c.get('baseline'), 3)} | "
            f"{_figure(c.get('final'), 3)} | {_figure(c.get('ratio'), 3)} | "
            f"{_outcome(c['passed'])} |"
        )
    memory = v["memory"]
    for name, p in memory["processes"].items():
        lines.append(
            f"| {memory['criterion']}: {name} | {memory['compared']} | "
            f"{_figure(p.get('baseline_mib'), 1)} | {_figure(p.get('final_mib'), 1)} | "
            f"{_figure(p.get('ratio'), 3)} | {_outcome(p['passed'])} |"
        )
    return "\n".join([*lines, "", *_notes(o)]) + "\n"


def _notes(o: dict[str, Any]) -> list[str]:
    window, slide, watermark = o["window_s"], o["slide_s"], o["watermark_s"]
    open_windows = math.ceil((window + watermark) / slide)
    return [
        "How to read it. A minute's batches are the micro-batches (of every query the job "
        "runs) that read rows and ended in it; their time is `durationMs.triggerExecution`. "
        "State rows are `stateOperators[*].numRowsTotal` summed over each query's latest "
        "progress, the most seen in the minute. Lag is the topic's end offsets minus the "
        "sink group's committed offsets, and minus the `endOffset` of the query furthest "
        "behind (what its last batch read), the most seen in the minute. Memory is each "
        "process's RSS with its children, the minute's mean: the bench process (it is the "
        "Spark driver), the Spark JVM and its Python workers (summed), the producer and the "
        "sink, and the local servers. Lag is recorded, not judged.",
        "",
        "Every criterion compares periods after a warm-up: the minutes the state takes to "
        f"fill ({o['state_fill_minutes']}), at least {WARMUP_MINUTES}. The local servers' "
        "memory is recorded, not judged: they hold more data the longer "
        "the run goes, and are not the pipeline under test.",
        "",
        "State rows are bounded by the watermark, not constant from the start: the job keeps "
        "a window start's row (the partials of a bucket of coins) until the watermark "
        f"(newest event time minus {watermark} s) passes the window's end, and the "
        "identities of a slide's ticks (one row per bucket, source and slide, to drop "
        "duplicates) until it passes the slide's end, each with its timer. So at a steady "
        f"rate the state grows for the first {o['state_fill_minutes']} minutes, then levels "
        f"off at about {open_windows} window starts and {math.ceil(watermark / slide)} "
        "identity slides per bucket and source, whatever the tick rate; the check compares "
        "periods after that, and a shorter run does not judge it.",
    ]


def write(result: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """`soak.json` and `soak.md` under `directory`."""
    return write_results(result, directory, name="soak", render=markdown)
