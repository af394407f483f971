"""`crypto-platform dev`: `dagster dev` and the API together; one Ctrl-C stops both cleanly.

Each server runs in a session of its own, so the terminal's SIGINT reaches this process
only, never a run worker or the Spark JVM directly (which is how a Ctrl-C used to record
the Spark run as FAILURE). On SIGINT or SIGTERM it pauses the supervisor sensor (nothing
is relaunched), terminates every active run through the webserver's GraphQL API (the
ops flush and commit; the runs end CANCELED), then stops dagster dev and the
API and every process of their sessions: SIGINT, then SIGTERM, then SIGKILL.

The sensor is switched back on when `dev` next starts, unless it was off already.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import requests

from crypto_platform.errors import ConfigurationError, PlatformError
from crypto_platform.settings import Settings
from crypto_platform.stack.process import port_in_use, stop_sessions

SENSOR = "streaming_supervisor"
SENSOR_SELECTOR = {
    "repositoryLocationName": "crypto_platform",
    "repositoryName": "__repository__",
    "sensorName": SENSOR,
}
ACTIVE_RUNS = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
# Ctrl-C to nothing left within STOP_BUDGET_S: the runs get RUNS_STOP_S to end, the
# servers what is left but FORCE_S, kept for SIGTERM and SIGKILL of what still runs.
STOP_BUDGET_S = 15.0
RUNS_STOP_S = 8.0
FORCE_S = 3.0
START_TIMEOUT_S = 180.0


def dagster_home(settings: Settings) -> Path:
    """`<data dir>/dagster`: where the local instance keeps its runs and its dagster.yaml."""
    return (settings.data_dir / "dagster").resolve()


class Server:
    """A child in a session of its own; its output goes to a log file and, until muted, to us."""

    def __init__(
        self, name: str, argv: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path
    ):
        self.name = name
        self.log = log
        self.muted = threading.Event()
        log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._relay, name=f"{name}-output", daemon=True).start()

    def _relay(self) -> None:
        output: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        with self.log.open("ab") as log:
            for line in output:
                log.write(line)
                log.flush()
                if not self.muted.is_set():
                    sys.stdout.buffer.write(line)
                    sys.stdout.flush()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 5) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.rstrip().splitlines()[-lines:]) or "(no output)"


class Webserver:
    """The parts of dagster dev's GraphQL API that a clean stop needs."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.base}/server_info", timeout=2).ok
        except requests.RequestException:
            return False

    def query(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            f"{self.base}/graphql", json={"query": query, "variables": variables}, timeout=5
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise PlatformError(f"Dagster GraphQL: {body['errors'][0].get('message')}")
        return body["data"]

    def sensor_running(self) -> bool | None:
        """True/False for the supervisor's state; None while the code location loads."""
        data = self.query(
            """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
                 ... on Sensor { sensorState { status } } } }""",
            selector=SENSOR_SELECTOR,
        )
        state = (data["sensorOrError"] or {}).get("sensorState")
        return None if state is None else state["status"] == "RUNNING"

    def set_sensor(self, running: bool) -> None:
        if running:
            self.query(
                """mutation($selector: SensorSelector!) {
                     startSensor(sensorSelector: $selector) { __typename } }""",
                selector=SENSOR_SELECTOR,
            )
            return
        data = self.query(
            """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
                 ... on Sensor { sensorState { id } } } }""",
            selector=SENSOR_SELECTOR,
        )
        state_id = data["sensorOrError"]["sensorState"]["id"]
        self.query("mutation($id: String!) { stopSensor(id: $id) { __typename } }", id=state_id)

    def active_runs(self) -> list[str]:
        data = self.query(
            """query($statuses: [RunStatus!]) { runsOrError(filter: {statuses: $statuses}) {
                 ... on Runs { results { runId } } } }""",
            statuses=ACTIVE_RUNS,
        )
        return [run["runId"] for run in data["runsOrError"]["results"]]

    def terminate(self, run_ids: list[str]) -> None:
        self.query(
            "mutation($ids: [String!]!) { terminateRuns(runIds: $ids) { __typename } }",
            ids=run_ids,
        )


class DevServer:
    """dagster dev plus the API, started together and stopped together."""

    def __init__(
        self,
        settings: Settings,
        *,
        dagster_port: int,
        api_port: int,
        workspace: Path,
        say: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.dagster_port = dagster_port
        self.api_port = api_port
        self.workspace = workspace.resolve()
        self.say = say
        self.home = dagster_home(settings)
        self.paused_marker = self.home / "supervisor-paused-by-dev"
        self.webserver = Webserver(dagster_port)
        self.servers: list[Server] = []

    def run(self, stop: threading.Event) -> None:
        """Start both, wait for `stop` (or dagster dev's end), then stop everything."""
        self._check()
        try:
            self._start()
            self._watch(stop)
        finally:
            self.shutdown()

    def _check(self) -> None:
        config = self.workspace.parent / "dagster.yaml"
        if not self.workspace.is_file() or not config.is_file():
            raise ConfigurationError(
                f"{self.workspace} or {config} not found: run `crypto-platform dev` from the "
                "project's root (or pass --workspace)"
            )
        for port, option in ((self.dagster_port, "--dagster-port"), (self.api_port, "--api-port")):
            if port_in_use(port):
                raise ConfigurationError(
                    f"port {port} is already in use: stop what holds it or choose another "
                    f"with {option}"
                )

    def _start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.workspace.parent / "dagster.yaml", self.home / "dagster.yaml")
        env = {**os.environ, "DAGSTER_HOME": str(self.home)}
        bin_dir = Path(sys.executable).parent
        dagster = [str(bin_dir / "dagster"), "dev", "-w", str(self.workspace)]
        self.servers.append(
            Server(
                "dagster",
                [*dagster, "-h", "127.0.0.1", "-p", str(self.dagster_port)],
                env=env,
                cwd=self.workspace.parent,
                log=self.home / "dagster-dev.log",
            )
        )
        api = [str(bin_dir / "crypto-platform"), "api", "--host", "127.0.0.1"]
        self.servers.append(
            Server(
                "api",
                [*api, "--port", str(self.api_port)],
                env=env,
                cwd=self.workspace.parent,
                log=self.home / "api.log",
            )
        )

    def _watch(self, stop: threading.Event) -> None:
        dagster, api = self.servers
        deadline = time.monotonic() + START_TIMEOUT_S
        dagster_up = api_said = False
        while not stop.wait(0.5):
            if not dagster.running:
                raise PlatformError(
                    f"dagster dev exited (code {dagster.process.returncode}); last lines of "
                    f"{dagster.log}:\n{dagster.tail()}"
                )
            if not dagster_up and self.webserver.ready():
                # While the code location loads, GraphQL may fail: ask again next time.
                with contextlib.suppress(requests.RequestException, PlatformError):
                    dagster_up = self._dagster_ready()
            if not api_said and not api.running:
                api_said = True
                self.say(
                    f"the API did not start (exit code {api.process.returncode}); "
                    f"last lines of {api.log}:\n{api.tail()}"
                )
            elif not api_said and port_in_use(self.api_port):
                api_said = True
                self.say(f"API on http://127.0.0.1:{self.api_port}")
            if not dagster_up and time.monotonic() > deadline:
                raise PlatformError(
                    f"dagster dev did not answer within {START_TIMEOUT_S:.0f}s; see {dagster.log}"
                )

    def _dagster_ready(self) -> bool:
        """Once the code location answers: switch the supervisor back on if `dev` paused it."""
        running = self.webserver.sensor_running()
        if running is None:
            return False
        if self.paused_marker.exists():
            if not running:
                self.webserver.set_sensor(True)
            self.paused_marker.unlink()
        self.say(f"Dagster UI on http://127.0.0.1:{self.dagster_port} (Ctrl-C stops everything)")
        return True

    def shutdown(self) -> None:
        """End the runs cleanly, then stop every process the servers started."""
        for server in self.servers:
            server.muted.set()
        started = time.monotonic()
        if self.servers and self.servers[0].running and self.webserver.ready():
            self.say("stopping: terminating the running Dagster runs (they flush and commit)")
            try:
                self._end_runs(started + RUNS_STOP_S)
            except (requests.RequestException, PlatformError) as error:
                self.say(f"could not end the runs through Dagster ({error}); stopping anyway")
        for server in self.servers:
            if server.running:
                server.process.send_signal(signal.SIGINT)
        left = stop_sessions(
            [server.process.pid for server in self.servers],
            grace=max(1.0, started + STOP_BUDGET_S - FORCE_S - time.monotonic()),
        )
        for server in self.servers:
            server.process.wait()
        if self.servers:
            forced = f" ({left} processes needed SIGKILL)" if left else ""
            self.say(f"stopped in {time.monotonic() - started:.1f}s{forced}")

    def _end_runs(self, deadline: float) -> None:
        paused = bool(self.webserver.sensor_running())
        if paused:
            self.paused_marker.touch()
            self.webserver.set_sensor(False)
        ended: set[str] = set()
        active = self.webserver.active_runs()
        while active and time.monotonic() < deadline:
            # A launch already under way when the sensor paused shows up here too.
            if fresh := [run_id for run_id in active if run_id not in ended]:
                self.webserver.terminate(fresh)
                ended.update(fresh)
            time.sleep(0.5)
            active = self.webserver.active_runs()
        if active:
            self.say(f"runs still ending after {RUNS_STOP_S:.0f}s: {', '.join(active)}")
        # A sensor tick under way when the sensor was paused writes its state back as
        # running when it ends: pause it again.
        if paused and self.webserver.sensor_running():
            self.webserver.set_sensor(False)
