"""The results file (JSON, with stable top-level keys) and its Markdown table."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crypto_platform.bench.spark import PHASES, TRIGGER_S

TARGETS = {
    "producer_ratio": (">=", 0.9),
    "sink_ratio": (">=", 0.8),
    "latency_p99_ms_1000": ("<", 250.0),
    "spark_catchup_rows_per_s": (">=", 20_000),
    "spark_batch_p50_s": ("<", 1.5),
    "spark_catchup_ratio": (">=", 0.8),
    "spark_symbols_ratio": (">=", 0.8),
    "spark_batch_p99_s": ("<", 3.0),
    # A tick waits up to one trigger interval for its batch, which then has 1.5 s to write it.
    "cassandra_latency_p99_ms_1000": ("<", (TRIGGER_S + 1.5) * 1000),
    "api_rps_ratio": (">=", 0.5),
    "api_p99_ms_200": ("<", 50.0),
    "push_p99_ms": ("<", 1000.0),
    "repair_ratio": (">=", 0.7),
    "gap_repair_s": ("<", 120.0),
    "candles_extra_cost": (">=", 0.9),
}
# Where each headline figure sits in the results (a run of the API part alone has only those).
HEADLINES: dict[str, Callable[[dict[str, Any]], float]] = {
    "producer_ratio": lambda r: r["producer"]["ratio"],
    "sink_ratio": lambda r: r["sink"]["ratio"],
    "latency_p99_ms_100": lambda r: r["latency"]["100"]["p99_ms"],
    "latency_p99_ms_1000": lambda r: r["latency"]["1000"]["p99_ms"],
    "spark_catchup_rows_per_s": lambda r: r["spark"]["catch_up"]["rows_per_s"],
    "spark_batch_p50_s": lambda r: r["spark"]["micro_batches"]["p50_s"],
    "spark_catchup_ratio": lambda r: r["spark"]["catch_up"]["ratio"],
    "spark_symbols_ratio": lambda r: r["spark"]["symbols_ratio"],
    "spark_batch_p99_s": lambda r: r["spark"]["micro_batches"]["p99_s"],
    "cassandra_latency_p99_ms_1000": (
        lambda r: r["spark"]["micro_batches"]["cassandra_latency"]["p99_ms"]
    ),
    "api_rps_ratio": lambda r: r["api"]["ratio"],
    "api_p99_ms_200": lambda r: r["api"]["paced"]["p99_ms"],
    "push_p99_ms": lambda r: r["api"]["push"]["p99_ms"],
    "repair_rows_per_s": lambda r: r["repair"]["ours_per_s"],
    "repair_ratio": lambda r: r["repair"]["ratio"],
    "gap_repair_s": lambda r: r["gap_repair"]["seconds"],
    "candles_extra_cost": lambda r: r["candles"]["ratio"],
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
    headline = {}
    for key, pick in HEADLINES.items():
        with contextlib.suppress(KeyError):
            headline[key] = pick(results)
    met = {}
    for key, (operator, bound) in TARGETS.items():
        if key in headline:
            value = headline[key]
            met[key] = value >= bound if operator == ">=" else value < bound
    return {
        **headline,
        "targets": {key: f"{op} {bound}" for key, (op, bound) in TARGETS.items() if key in met},
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
    ok = {key: ("met" if value else "MISSED") for key, value in summary["targets_met"].items()}
    machine = summary["machine"]
    lines = [
        f"Run {summary['generated_at']} ({'quick' if summary['quick'] else 'full'}) on "
        f"{machine['cores']} cores, {machine['memory_gib']} GiB, Python {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()),
        "",
        "| measurement | ours | bare baseline (same run) | ratio / figure | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    if "producer" in d:
        lines += _pipeline_rows(d, ok)
    if "spark" in d:
        lines += _spark_rows(d["spark"], ok, summary["targets"])
    if "api" in d:
        lines += _api_rows(d["api"], ok)
    if "repair" in d:
        r = d["repair"]
        lines.append(
            f"| repair from MongoDB, ticks/s ({r['ticks']:,} ticks, {r['windows_written']:,} "
            f"windows) | {r['ours_per_s']:,} | {r['bare_per_s']:,} (pymongo read + "
            f"cassandra-driver write) | {r['ratio']} | >= 0.7: {ok['repair_ratio']} |"
        )
    if "gap_repair" in d:
        g = d["gap_repair"]
        lines.append(
            f"| gap repair by the automation, s from the end of a {g['outage_s']:.0f} s outage "
            f"at {g['rate_per_s']:.0f} ticks/s to every window repaired ({g['gaps']} gaps, "
            f"{g['ticks_backfilled']:,} ticks backfilled; windows over them wrong: "
            f"{g['windows_wrong']} of {g['windows_checked']}) | {g['seconds']} | - | - | "
            f"< 120: {ok['gap_repair_s']} |"
        )
    if "candles" in d:
        c = d["candles"]
        lines.append(
            f"| Spark catch-up with candles (1m, 5m, 1h, 1d), rows/s ({c['ticks']:,} ticks, "
            f"{c['symbols']} coins, best of {c['rounds']}) | {c['with_rows_per_s']:,} | "
            f"{c['without_rows_per_s']:,} (the same pass without candles) | {c['ratio']} | "
            f">= 0.9: {ok['candles_extra_cost']} |"
        )
    if "spark" in d:
        lines += _phase_table(d["spark"])
    if "scaling" in d:
        lines += _scaling_rows(d["scaling"], d["spark"]["symbols_ratio"], summary["targets"], ok)
    return "\n".join(lines) + "\n"


def _scaling_rows(
    rows: list[dict[str, Any]], ratio: float, targets: dict[str, str], ok: dict[str, str]
) -> list[str]:
    """Throughput per number of coins; Spark's ratio of the most coins over the fewest."""
    counts = [row["symbols"] for row in rows]
    lines = [
        "",
        "| symbols | producer ticks/s | sink ticks/s | Spark catch-up rows/s |",
        "| ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {row['symbols']:,} | {row.get('producer_per_s', '-'):,} | "
        f"{row.get('sink_per_s', '-'):,} | {row['spark_rows_per_s']:,} |"
        for row in rows
    ]
    return [
        *lines,
        "",
        f"spark_symbols_ratio (catch-up with {max(counts):,} coins over {min(counts):,}): "
        f"{ratio} (target {targets['spark_symbols_ratio']}: {ok['spark_symbols_ratio']})",
    ]


def _pipeline_rows(d: dict[str, Any], ok: dict[str, str]) -> list[str]:
    p, s, lat = d["producer"], d["sink"], d["latency"]
    lines = [
        f"| producer, ticks/s ({p['ticks']:,} ticks) | {p['ours_per_s']:,} | {p['bare_per_s']:,} "
        f"(kafka-python send loop) | {p['ratio']} | >= 0.9: {ok['producer_ratio']} |",
        f"| MongoDB sink, ticks/s ({s['ticks']:,} ticks) | {s['ours_per_s']:,} | consume "
        f"{s['bare_consume_per_s']:,}, insert_many {s['bare_insert_many_per_s']:,} | "
        f"{s['ratio']} of the slower | >= 0.8: {ok['sink_ratio']} |",
    ]
    for rate in ("100", "1000"):
        r = lat[rate]
        bound = TARGETS["latency_p99_ms_1000"][1]
        target = f"p99 < {bound:.0f}: {ok['latency_p99_ms_1000']}" if rate == "1000" else "-"
        lines.append(
            f"| latency at {rate}/s, ingest to MongoDB commit, ms ({r['ticks']:,} ticks) | p50 "
            f"{r['p50_ms']:.0f}, p95 {r['p95_ms']:.0f}, p99 {r['p99_ms']:.0f} | - | "
            f"p99 {r['p99_ms']:.0f} | {target} |"
        )
    return lines


def _spark_rows(sp: dict[str, Any], ok: dict[str, str], targets: dict[str, str]) -> list[str]:
    c, m = sp["catch_up"], sp["micro_batches"]
    bare, lat = c["bare"], m["cassandra_latency"]
    return [
        f"| Spark available-now catch-up, rows/s ({c['ticks']:,} ticks, {c['seconds']} s) | "
        f"{c['rows_per_s']:,} | {bare['combined_per_s']:,} (kafka-python read "
        f"{bare['read_per_s']:,}, cassandra-driver unlogged batches {bare['write_per_s']:,}) | "
        f"{c['ratio']} | >= 0.8: {ok['spark_catchup_ratio']}; >= 20,000 rows/s: "
        f"{ok['spark_catchup_rows_per_s']} |",
        f"| Spark micro-batch at {m['rate']:.0f} ticks/s, s ({m['batches']} batches) | p50 "
        f"{m['p50_s']}, p99 {m['p99_s']} | - | p50 {m['p50_s']}, p99 {m['p99_s']} | p50 < 1.5: "
        f"{ok['spark_batch_p50_s']}; p99 < 3: {ok['spark_batch_p99_s']} |",
        f"| latency at {m['rate']:.0f}/s, ingest to prices_by_symbol write time, ms "
        f"({lat['rows']:,} rows, {m['trigger_s']} s trigger) | p50 {lat['p50_ms']:.0f}, "
        f"p95 {lat['p95_ms']:.0f}, p99 {lat['p99_ms']:.0f} | - | p99 {lat['p99_ms']:.0f} | "
        f"p99 {targets['cassandra_latency_p99_ms_1000']}: {ok['cassandra_latency_p99_ms_1000']} |",
    ]


def _phase_table(sp: dict[str, Any]) -> list[str]:
    """Where a batch's time goes: the median `durationMs` phases, in both runs."""
    c, m = sp["catch_up"], sp["micro_batches"]
    runs = [
        (f"catch-up ({c['ticks']:,} ticks)", c["batches"], c["duration_ms_p50"]),
        (f"micro-batch at {m['rate']:.0f}/s", m["batches"], m["duration_ms_p50"]),
    ]
    lines = [
        "",
        "| Spark batch phases, p50 ms (durationMs) | batches | " + " | ".join(PHASES) + " |",
        "| --- | ---: |" + " ---: |" * len(PHASES),
    ]
    lines += [
        f"| {run} | {batches} | " + " | ".join(f"{phases[phase]:,.0f}" for phase in PHASES) + " |"
        for run, batches, phases in runs
    ]
    return lines


def _api_rows(a: dict[str, Any], ok: dict[str, str]) -> list[str]:
    loaded, paced, push = a["api"], a["paced"], a["push"]
    return [
        f"| API `/latestPrice/{{symbol}}`, requests/s ({a['clients']} clients, "
        f"{a['seconds']:.0f} s) | {loaded['rps']:,} (p50 {loaded['p50_ms']} ms, "
        f"p99 {loaded['p99_ms']} ms) | "
        f"{a['bare_per_s']:,} (cassandra-driver loop, same query) | {a['ratio']} | "
        f">= 0.5: {ok['api_rps_ratio']} |",
        f"| API at {paced['rate']} requests/s, ms ({paced['requests']:,} requests) | p50 "
        f"{paced['p50_ms']}, p99 {paced['p99_ms']} | - | p99 {paced['p99_ms']} | "
        f"< 50: {ok['api_p99_ms_200']} |",
        f"| push delay, Cassandra write to `/stream` client, ms ({push['samples']} prices) | p50 "
        f"{push['p50_ms']}, p99 {push['p99_ms']} | - | p99 {push['p99_ms']} | "
        f"< 1000: {ok['push_p99_ms']} |",
    ]


def write(summary: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """`<stamp>[-quick][-api].json/.md` and `latest[-quick][-api].json/.md` under `directory`.

    A run of one part alone is `-spark`, `-api`, `-repair` or `-candles`, so it never
    replaces a whole run's results.
    """
    directory.mkdir(parents=True, exist_ok=True)
    details = summary["details"]
    parts = ("spark", "api", "repair", "candles")
    alone = "producer" not in details
    part = next((f"-{name}" for name in parts if name in details and alone), "")
    kind = ("-quick" if summary["quick"] else "") + part
    stamp = summary["generated_at"].replace(":", "").replace("+0000", "Z")
    text = json.dumps(summary, indent=2, default=str)
    table = markdown(summary)
    for name in (f"{stamp}{kind}", f"latest{kind}"):
        (directory / f"{name}.json").write_text(text)
        (directory / f"{name}.md").write_text(table)
    return directory / f"latest{kind}.json", directory / f"latest{kind}.md"
