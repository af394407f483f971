"""What the local stack needs to know of each server: how to start it and when it answers."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

from crypto_platform.settings import ENV_PREFIX, Settings
from crypto_platform.stack.process import ServerProcess


class LocalServer(ABC):
    """A server the stack runs in the background under `<data_dir>/<name>/`."""

    name: str
    # The setting a user changes to move this server's client port.
    port_setting: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run_dir = (settings.data_dir / self.name).resolve()
        self.process = ServerProcess(self.name, self.run_dir)

    @property
    def data_path(self) -> Path:
        return self.run_dir / "data"

    @abstractmethod
    def ports(self) -> dict[str, int]:
        """Every port the server binds, by role; the client port first."""

    @property
    def client_port(self) -> int:
        return next(iter(self.ports().values()))

    def install(self) -> None:  # noqa: B027 - most servers come with pip: nothing to do
        """Fetch what the server needs, if pip did not already."""

    def prepare(self) -> None:  # noqa: B027 - most servers need no config file
        """Write config files into the run dir before a start."""

    @abstractmethod
    def argv(self) -> list[str]:
        """The foreground command that runs the server."""

    def env(self) -> dict[str, str]:
        """Our environment without the `CRYPTO_*` variables: no secret reaches a server."""
        return {
            name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)
        }

    @abstractmethod
    def is_ready(self) -> bool:
        """Tell whether the server answers a real request (not merely an open port)."""

    @abstractmethod
    def connection(self) -> str:
        """The setting a client needs, as `CRYPTO_...=value`."""
