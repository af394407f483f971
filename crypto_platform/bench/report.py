"""The results file (JSON, with stable top-level keys) and its Markdown table."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
from pathlib import Path
from typing import Any

TARGETS = {
    "producer_ratio": (">=", 0.9),
    "sink_ratio": (">=", 0.8),
    "latency_p99_ms_1000": ("<", 500.0),
    "spark_catchup_rows_per_s": (">=", 20_000),
    "spark_batch_p50_s": ("<", 1.5),
}
PACKAGES = (
    "kafka-python",
    "pymongo",
    "cassandra-driver",
    "pyspark",
    "dagster",
    "noida-db",
    "SecantusDB",
)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def summarise(results: dict[str, Any], *, quick: bool) -> dict[str, Any]:
    """The results with the headline figures at the top level, the machine and versions."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    headline = {
        "producer_ratio": results["producer"]["ratio"],
        "sink_ratio": results["sink"]["ratio"],
        "latency_p99_ms_100": results["latency"]["100"]["p99_ms"],
        "latency_p99_ms_1000": results["latency"]["1000"]["p99_ms"],
        "spark_catchup_rows_per_s": results["spark"]["catch_up"]["rows_per_s"],
        "spark_batch_p50_s": results["spark"]["micro_batches"]["p50_s"],
    }
    met = {}
    for key, (operator, bound) in TARGETS.items():
        value = headline[key]
        met[key] = value >= bound if operator == ">=" else value < bound
    return {
        **headline,
        "targets": {key: f"{op} {bound}" for key, (op, bound) in TARGETS.items()},
        "targets_met": met,
        "quick": quick,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "memory_gib": round(memory, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": {**{p: _version(p) for p in PACKAGES}, "cassandra": "2.1.0"},
        "details": results,
    }


def markdown(summary: dict[str, Any]) -> str:
    """The table a person reads: each figure, its bare baseline, the ratio, the target."""
    d = summary["details"]
    p, s, lat, sp = d["producer"], d["sink"], d["latency"], d["spark"]
    ok = {key: ("met" if value else "MISSED") for key, value in summary["targets_met"].items()}
    machine = summary["machine"]
    lines = [
        f"Run {summary['generated_at']} ({'quick' if summary['quick'] else 'full'}) on "
        f"{machine['cores']} cores, {machine['memory_gib']} GiB, Python {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()),
        "",
        "| measurement | ours | bare baseline (same run) | ratio / figure | target |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| producer, ticks/s ({p['ticks']:,} ticks) | {p['ours_per_s']:,} | {p['bare_per_s']:,} "
        f"(kafka-python send loop) | {p['ratio']} | >= 0.9: {ok['producer_ratio']} |",
        f"| MongoDB sink, ticks/s ({s['ticks']:,} ticks) | {s['ours_per_s']:,} | consume "
        f"{s['bare_consume_per_s']:,}, insert_many {s['bare_insert_many_per_s']:,} | "
        f"{s['ratio']} of the slower | >= 0.8: {ok['sink_ratio']} |",
    ]
    for rate in ("100", "1000"):
        r = lat[rate]
        target = f"p99 < 500: {ok['latency_p99_ms_1000']}" if rate == "1000" else "-"
        lines.append(
            f"| latency at {rate}/s, ingest to MongoDB, ms ({r['ticks']:,} ticks) | p50 "
            f"{r['p50_ms']:.0f}, p95 {r['p95_ms']:.0f}, p99 {r['p99_ms']:.0f} | - | "
            f"p99 {r['p99_ms']:.0f} | {target} |"
        )
    c, m = sp["catch_up"], sp["micro_batches"]
    lines += [
        f"| Spark available-now catch-up, rows/s ({c['ticks']:,} ticks) | {c['rows_per_s']:,} | - "
        f"| {c['seconds']} s | >= 20,000: {ok['spark_catchup_rows_per_s']} |",
        f"| Spark micro-batch at 1000 ticks/s, s (prices / aggregates) | p50 "
        f"{m['prices']['p50_s']} / {m['aggregates']['p50_s']}, p99 {m['prices']['p99_s']} / "
        f"{m['aggregates']['p99_s']} | - | p50 {m['p50_s']} | < 1.5: {ok['spark_batch_p50_s']} |",
        "",
        "| symbols | producer ticks/s | sink ticks/s | Spark catch-up rows/s |",
        "| ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {row['symbols']:,} | {row['producer_per_s']:,} | {row['sink_per_s']:,} | "
        f"{row['spark_rows_per_s']:,} |"
        for row in d["scaling"]
    ]
    return "\n".join(lines) + "\n"


def write(summary: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """`<stamp>[-quick].json/.md` and `latest[-quick].json/.md` under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    kind = "-quick" if summary["quick"] else ""
    stamp = summary["generated_at"].replace(":", "").replace("+0000", "Z")
    text = json.dumps(summary, indent=2, default=str)
    table = markdown(summary)
    for name in (f"{stamp}{kind}", f"latest{kind}"):
        (directory / f"{name}.json").write_text(text)
        (directory / f"{name}.md").write_text(table)
    return directory / f"latest{kind}.json", directory / f"latest{kind}.md"
