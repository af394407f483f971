"""A real `dagster dev` (webserver, daemon, code server) for tests, reaped completely."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from crypto_platform.stack.ephemeral import free_ports
from crypto_platform.stack.process import stop_sessions
from crypto_platform_tests.conftest import REPO


class DagsterDev:
    """Where the running `dagster dev` answers, and its GraphQL endpoint."""

    def __init__(self, port: int, home: Path, log: Path) -> None:
        self.port = port
        self.home = home
        self.log = log
        self.url = f"http://127.0.0.1:{port}/graphql"

    def graphql(self, query: str, **variables: object) -> dict:
        response = httpx.post(self.url, json={"query": query, "variables": variables}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def stop_sensor(self, name: str) -> None:
        """Switch a sensor off (as the UI's toggle does)."""
        data = self.graphql(
            """query($name: String!) { sensorOrError(sensorSelector: {
                 repositoryLocationName: "crypto_platform", repositoryName: "__repository__",
                 sensorName: $name}) { ... on Sensor { sensorState { id } } } }""",
            name=name,
        )
        state_id = data["sensorOrError"]["sensorState"]["id"]
        self.graphql("mutation($id: String!) { stopSensor(id: $id) { __typename } }", id=state_id)

    def start_sensor(self, name: str) -> None:
        """Switch a sensor back on (as the UI's toggle does)."""
        self.graphql(
            """mutation($name: String!) { startSensor(sensorSelector: {
                 repositoryLocationName: "crypto_platform", repositoryName: "__repository__",
                 sensorName: $name}) { __typename } }""",
            name=name,
        )


@contextlib.contextmanager
def dagster_dev(home: Path, env: dict[str, str]) -> Iterator[DagsterDev]:
    """Start `dagster dev` with DAGSTER_HOME=`home`; stop and reap it at the end."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    (port,) = free_ports(1)
    log = home / "dagster-dev.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env={**os.environ, **env, "DAGSTER_HOME": str(home)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = DagsterDev(port, home, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).is_success:
                    break
            assert time.monotonic() < deadline, "dagster dev did not start in 120 s"
            time.sleep(0.5)
        yield server
    finally:
        # dagster dev's children outlive a signal to its group: stop the whole session.
        process.send_signal(signal.SIGINT)
        stop_sessions([process.pid], grace=15.0)
        process.wait(timeout=10)
