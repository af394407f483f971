"""The MongoDB-protocol server of the local stack: SecantusDB (WiredTiger, from pip)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from crypto_platform.errors import StackError
from crypto_platform.stack.process import port_open
from crypto_platform.stack.server import LocalServer


class MongoServer(LocalServer):
    """secantusd-py with every commit synced, so a kill -9 loses no acknowledged write."""

    name = "mongodb"
    port_setting = "CRYPTO_MONGO_URI"

    def ports(self) -> dict[str, int]:
        return {"mongodb": self.settings.mongo_port}

    @property
    def config_file(self) -> Path:
        return self.run_dir / "secantusd.toml"

    def prepare(self) -> None:
        # An explicit (empty) config stops it picking up a ./secantusd.toml of the cwd.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.touch()

    def argv(self) -> list[str]:
        launcher = Path(sys.executable).parent / "secantusd-py"
        if not launcher.exists():
            found = shutil.which("secantusd-py")
            if found is None:
                raise StackError("secantusd-py not found: run `make install` (pip SecantusDB)")
            launcher = Path(found)
        return [
            sys.executable, str(launcher), "--host", "127.0.0.1", "--port", str(self.client_port),
            "--storage-path", str(self.data_path), "--sync-on-commit",
            "--config", str(self.config_file), "--log-level", "WARNING",
        ]  # fmt: skip

    def is_ready(self) -> bool:
        if not port_open(self.client_port):
            return False
        client: MongoClient = MongoClient(
            self.uri, serverSelectionTimeoutMS=2000, connectTimeoutMS=1000
        )
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.client_port}/?directConnection=true"

    def connection(self) -> str:
        return f"CRYPTO_MONGO_URI={self.uri}"
