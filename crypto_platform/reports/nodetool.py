"""Cassandra's own table figures over JMX (`nodetool cfstats`), for a node without CQL ones.

The local Cassandra 2.1.0 has no `system.size_estimates`; it reports its tables' sizes only
over JMX, which the local stack opens on loopback (CRYPTO_CASSANDRA_JMX_PORT). NodeTool
runs from the local install, on Java 17 with the RMI URL parsing it was written for.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.stack import cassandra_install

TIMEOUT_S = 60.0
TABLE = re.compile(r"^\t\tTable: (\w+)$")
FIGURE = re.compile(r"^\t\t(?P<name>[^:]+?)(?:, bytes)?: (?P<value>-?\d+)$")
# The lines read, as 2.1.0 (and later releases) print them, and the figure each gives.
FIGURES = {
    "Space used (live)": "sstable_bytes",
    "Memtable data size": "memtable_bytes",
    "Number of keys (estimate)": "partitions",  # 2.1.x after 2.1.0
    "Number of partitions (estimate)": "partitions",  # 3.0 and later
}


class NodetoolUnavailable(PlatformError):
    """nodetool cannot run here (no Java, no local install) or the node did not answer."""


def parse_cfstats(output: str) -> dict[str, dict[str, int]]:
    """Each table's figures (named as in `FIGURES`) in `nodetool cfstats KEYSPACE`'s output."""
    tables: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    for line in output.splitlines():
        if table := TABLE.match(line):
            current = tables.setdefault(table.group(1), {})
        elif current is not None and (figure := FIGURE.match(line)):
            field = FIGURES.get(figure.group("name"))
            if field is not None:
                current[field] = int(figure.group("value"))
    return tables


def run(settings: Settings, *args: str) -> str:
    """Run `nodetool ARGS` against the configured node's JMX port; its output."""
    java = shutil.which("java")
    vendor = settings.vendor_dir
    if java is None or not cassandra_install.is_installed(vendor):
        raise NodetoolUnavailable("nodetool needs Java and the local Cassandra install")
    home = cassandra_install.cassandra_home(vendor)
    conf = home / "conf"
    classpath = ":".join([str(conf), *sorted(str(jar) for jar in (home / "lib").glob("*.jar"))])
    argv = [
        java, "-Dcom.sun.jndi.rmiURLParsing=legacy",
        f"-Dlogback.configurationFile={conf / 'logback-tools.xml'}",
        "-cp", classpath, "org.apache.cassandra.tools.NodeTool",
        "-h", settings.cassandra_hosts[0], "-p", str(settings.cassandra_jmx_port), *args,
    ]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise NodetoolUnavailable(f"nodetool did not answer within {TIMEOUT_S:.0f}s") from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise NodetoolUnavailable(f"nodetool {args[0]} failed: {last[0]}")
    return done.stdout


def cfstats(settings: Settings, keyspace: str) -> dict[str, dict[str, int]]:
    """The figures of the keyspace's tables, as `nodetool cfstats KEYSPACE` prints them."""
    return parse_cfstats(run(settings, "cfstats", keyspace))
