"""The Kafka-protocol broker of the local stack: noida-db (a single Rust binary from pip)."""

from __future__ import annotations

from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from crypto_platform.errors import StackError
from crypto_platform.stack.process import port_open
from crypto_platform.stack.server import LocalServer


class KafkaServer(LocalServer):
    """noida-db with only its Kafka service on, state under the run dir."""

    name = "kafka"
    port_setting = "CRYPTO_KAFKA_BOOTSTRAP_SERVERS"

    def ports(self) -> dict[str, int]:
        return {"kafka": self.settings.kafka_port}

    def argv(self) -> list[str]:
        # Imported here: noida-db is in the `local` extra, which production images lack.
        try:
            import noida_db
        except ImportError:
            raise StackError("noida-db not found: run `make install` (pip extra `local`)") from None
        binary = Path(noida_db.__file__).parent / "noida-db"
        return [
            str(binary), "start", "--only", "kafka", "--host", "127.0.0.1",
            "--kafka-port", str(self.client_port), "--data-dir", str(self.data_path),
        ]  # fmt: skip

    def is_ready(self) -> bool:
        if not port_open(self.client_port):
            return False
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=f"127.0.0.1:{self.client_port}", request_timeout_ms=2000
            )
        except KafkaError:
            return False
        try:
            admin.list_topics()
            return True
        except KafkaError:
            return False
        finally:
            admin.close()

    def connection(self) -> str:
        return f"CRYPTO_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{self.client_port}"
