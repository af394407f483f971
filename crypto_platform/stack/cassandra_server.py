"""Apache Cassandra 2.1.0 as the local stack's Cassandra, run straight on the JVM.

bin/cassandra does not work on Java 17, so the JVM is started here with what 2.1 needs
there: every java.base package opened, JNA left off (as root it locks the whole heap),
JMX on loopback for nodetool.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

from cassandra.cluster import Cluster

from crypto_platform.errors import StackError
from crypto_platform.stack import cassandra_install
from crypto_platform.stack.process import port_open
from crypto_platform.stack.server import LocalServer

MIN_JAVA = 17


@functools.cache
def java_version() -> int:
    """The major version of `java` on PATH; a clear error when it is missing or old."""
    java = shutil.which("java")
    if java is None:
        raise StackError(
            f"Java not found: Cassandra needs Java {MIN_JAVA}+. "
            "Install it with `apt-get install -y openjdk-17-jre-headless` (make install does)."
        )
    output = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if match is None:
        raise StackError(f"cannot read the Java version from: {output.strip()}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise StackError(
            f"Java {major} is too old: Cassandra here runs on Java {MIN_JAVA}+ "
            "(apt-get install -y openjdk-17-jre-headless)."
        )
    return major


@functools.cache
def java_base_packages() -> tuple[str, ...]:
    """Every package of java.base, each of which Cassandra 2.1 reflects into."""
    output = subprocess.run(
        ["java", "--describe-module", "java.base"], capture_output=True, text=True, check=True
    ).stdout
    packages = {
        parts[1]
        for parts in (line.split() for line in output.splitlines())
        if len(parts) >= 2 and parts[0] in {"exports", "contains"}
    }
    return tuple(sorted(packages))


class CassandraServer(LocalServer):
    """One Cassandra node: num_tokens 1, no Thrift, no JNA, data under the run dir."""

    name = "cassandra"
    port_setting = "CRYPTO_CASSANDRA_PORT"

    @property
    def home(self) -> Path:
        return cassandra_install.cassandra_home(self.settings.vendor_dir)

    def ports(self) -> dict[str, int]:
        s = self.settings
        return {
            "native": s.cassandra_port,
            "storage": s.cassandra_storage_port,
            "ssl_storage": s.cassandra_ssl_storage_port,
            "jmx": s.cassandra_jmx_port,
        }

    def install(self) -> None:
        java_version()
        cassandra_install.install(self.settings.vendor_dir)

    def prepare(self) -> None:
        if not cassandra_install.is_installed(self.settings.vendor_dir):
            raise StackError("Cassandra is not installed: run `crypto-platform stack install`.")
        conf = self.run_dir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        config = json.loads((self.home / "cassandra.json").read_text())
        ports = self.ports()
        config.update(
            num_tokens=1,
            listen_address="127.0.0.1",
            rpc_address="127.0.0.1",
            seed_provider=[
                {
                    "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                    "parameters": [{"seeds": "127.0.0.1"}],
                }
            ],
            native_transport_port=ports["native"],
            storage_port=ports["storage"],
            ssl_storage_port=ports["ssl_storage"],
            start_rpc=False,
            disk_access_mode="standard",
            hinted_handoff_enabled=False,
            auto_snapshot=False,
            # batch: an acknowledged write survives kill -9 (periodic may lose 10 s).
            commitlog_sync="batch",
            commitlog_sync_batch_window_in_ms=2,
            data_file_directories=[str(self.data_path / "data")],
            commitlog_directory=str(self.data_path / "commitlog"),
            saved_caches_directory=str(self.data_path / "saved_caches"),
        )
        config.pop("commitlog_sync_period_in_ms", None)
        # JSON is YAML, so the driver's defaults plus our edits need no YAML writer.
        (conf / "cassandra.yaml").write_text(json.dumps(config, indent=2))
        shutil.copy(self.home / "conf" / "logback.xml", conf / "logback.xml")

    def argv(self) -> list[str]:
        java_version()
        conf = self.run_dir / "conf"
        lib = self.home / "lib"
        classpath = [str(conf)] + [
            str(jar) for jar in sorted(lib.glob("*.jar")) if not jar.name.startswith("jna-")
        ]
        heap = self.settings.cassandra_heap
        jmx = str(self.settings.cassandra_jmx_port)
        opens = [f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in java_base_packages()]
        return [
            "java", f"-Xms{heap}", f"-Xmx{heap}", "-Xss512k", "-XX:+UseG1GC",
            "-Djava.net.preferIPv4Stack=true", *opens,
            f"-javaagent:{lib / 'jamm-0.2.6.jar'}",
            "-Dcassandra.boot_without_jna=true",
            f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            f"-Dcassandra.logdir={self.run_dir / 'logs'}",
            "-Dcassandra-foreground=yes",
            f"-Dcom.sun.management.jmxremote.port={jmx}",
            f"-Dcom.sun.management.jmxremote.rmi.port={jmx}",
            "-Dcom.sun.management.jmxremote.host=127.0.0.1",
            "-Dcom.sun.management.jmxremote.ssl=false",
            "-Dcom.sun.management.jmxremote.authenticate=false",
            "-Djava.rmi.server.hostname=127.0.0.1",
            "-cp", ":".join(classpath),
            "org.apache.cassandra.service.CassandraDaemon",
        ]  # fmt: skip

    def is_ready(self) -> bool:
        if not port_open(self.client_port):
            return False
        cluster = Cluster(
            ["127.0.0.1"],
            port=self.client_port,
            protocol_version=self.settings.cassandra_protocol_version,
            connect_timeout=2,
        )
        try:
            session = cluster.connect()
            session.execute("SELECT release_version FROM system.local", timeout=5)
            return True
        except Exception:  # any failure means "not ready yet"
            return False
        finally:
            cluster.shutdown()

    def connection(self) -> str:
        return (
            f"CRYPTO_CASSANDRA_HOSTS=127.0.0.1 CRYPTO_CASSANDRA_PORT={self.client_port} "
            f"CRYPTO_CASSANDRA_PROTOCOL_VERSION={self.settings.cassandra_protocol_version}"
        )
