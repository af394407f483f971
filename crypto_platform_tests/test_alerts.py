"""Alerts against a real MongoDB and Dagster instance, delivered to a local webhook receiver.

Each kind of rule fires once per episode, and again once its condition cleared and came
back; a receiver that is down gets the alert once it is back, one that answers 429 is
left alone until its Retry-After is over; nothing fires twice across a restart of the
sensor, with its cursor, without it, or from the cursor before a crash; `/alerts` serves
what fired; `crypto-platform alerts test RULE` reaches the receiver.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import pytest
import yaml

from crypto_platform.completeness.gaps import Gap
from crypto_platform.defs.alerts.sensors import build_alert_sensor
from crypto_platform.defs.completeness.assets import HOUR_COMPLETE, HOURLY_COMPLETENESS
from crypto_platform.defs.resources.clients import MongoResource
from crypto_platform.provision import provision
from crypto_platform.settings import Settings
from crypto_platform.stack import LocalStack
from crypto_platform.stack.ephemeral import free_ports
from crypto_platform.storage import mongo
from crypto_platform.ticks import Tick, now_ms
from crypto_platform_tests.api_helpers import get, running_api
from crypto_platform_tests.conftest import run_cli

MINUTE_MS = 60_000
TOKEN = "s3cret-token"
RULES = [
    {"name": "btc-above-110", "kind": "price", "symbol": "BTC", "level": 110},
    {"name": "sol-jumps", "kind": "move", "symbol": "SOL", "percent": 10, "minutes": 5,
     "direction": "up"},
    {"name": "gap-10-min", "kind": "gap", "minutes": 10},
    {"name": "hour-incomplete", "kind": "check", "asset": "completeness/hourly_completeness",
     "check": "hour_complete"},
]  # fmt: skip


class Receiver:
    """A webhook receiver on a port of its own: it can go down, come back, and refuse."""

    def __init__(self) -> None:
        (self.port,) = free_ports(1)  # kept while down: not an ephemeral port
        self.received: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.attempts = 0
        # The next answers that are not a 200: status and headers.
        self.answers: deque[tuple[int, dict[str, str]]] = deque()
        self._server: ThreadingHTTPServer | None = None
        self.start()

    def url(self, path: str = f"/hook/{TOKEN}") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                if receiver.answers:
                    status, headers = receiver.answers.popleft()
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                else:
                    receiver.received.append(json.loads(body))
                    receiver.keys.append(self.headers["Idempotency-Key"])
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def ids(self) -> list[str]:
        return [alert["id"] for alert in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    webhook = Receiver()
    yield webhook
    webhook.stop()


@pytest.fixture
def alert_settings(stack: LocalStack) -> Settings:
    """The stack's settings with a MongoDB database of this test's own (only MongoDB is read)."""
    tag = uuid.uuid4().hex[:10]
    settings = stack.settings.model_copy(update={"mongo_database": f"alerts_{tag}"})
    provision(settings, ["mongodb"])
    return settings


@dataclass
class Alerting:
    """The sensor as the definitions build it, over the rules, and what it reads and writes."""

    settings: Settings
    instance: dg.DagsterInstance
    receiver: Receiver
    sensor: dg.SensorDefinition
    cursor: str | None = None
    last_tick_ms: int = 0
    gap_starts: list[int] = field(default_factory=list)
    checked_hours: int = 0

    def evaluate(self, cursor: str | None = None, *, keep: bool = True) -> dg.SensorResult:
        """One evaluation from the saved cursor (or `cursor`); `keep`: save the new one."""
        resource = MongoResource(uri=self.settings.mongo_uri, database=self.settings.mongo_database)
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor if cursor is None else cursor,
            resources={"mongo": resource},
        ) as context:
            result = self.sensor(context)
        assert isinstance(result, dg.SensorResult), result
        if keep:
            self.cursor = result.cursor
        return result

    def restart(self) -> None:
        """A new sensor, as a reload of the code location builds it."""
        self.sensor = build_alert_sensor()

    def documents(self) -> list[dict[str, Any]]:
        client = mongo.connect(self.settings)
        try:
            return list(mongo.alerts_collection(client, self.settings).find().sort("_id"))
        finally:
            client.close()

    def tick(self, symbol: str, price: float, at_ms: int | None = None) -> None:
        """A tick at `at_ms`, or now: a second after the last one at least (each is newer)."""
        if at_ms is None:
            at_ms = self.last_tick_ms = max(now_ms(), self.last_tick_ms + 1000)
        tick = Tick(source="simulated", symbol=symbol, price=price, event_time_ms=at_ms,
                    ingest_time_ms=at_ms)  # fmt: skip
        self._write(lambda client: mongo.prices_collection(client, self.settings).insert_one(
            tick.to_document()))  # fmt: skip

    def gap(self, start_ms: int, status: Literal["open", "repaired"] = "open") -> None:
        gap = Gap("simulated", "ETH", start_ms, now_ms(), 300, status)
        self._write(lambda client: mongo.gaps_collection(client, self.settings).replace_one(
            {"_id": gap.key}, gap.document(), upsert=True))  # fmt: skip

    def check(self, passed: bool) -> None:
        """An evaluation of the next hour's `hour_complete` (one per partition outside a run)."""
        hour = f"2026-12-06-{10 + self.checked_hours:02d}:00"
        self.checked_hours += 1
        self.instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=HOURLY_COMPLETENESS,
                check_name=HOUR_COMPLETE,
                passed=passed,
                description="every gap repaired" if passed else "1 gaps not repaired",
                partition=hour,
            )
        )

    def _write(self, write: Callable[[Any], object]) -> None:
        client = mongo.connect(self.settings)
        try:
            write(client)
        finally:
            client.close()


@pytest.fixture
def alerting(
    tmp_path: Path,
    alert_settings: Settings,
    receiver: Receiver,
    loaded_env: Callable[[str, str], None],
) -> Iterator[Alerting]:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump({"rules": RULES}))
    loaded_env("CRYPTO_ALERT_RULES_FILE", str(rules))
    loaded_env("CRYPTO_ALERT_WEBHOOK_URL", receiver.url())
    loaded_env("CRYPTO_ALERT_WEBHOOK_ATTEMPTS", "2")
    loaded_env("CRYPTO_ALERT_WEBHOOK_TIMEOUT_S", "2")
    with dg.instance_for_test() as instance:
        yield Alerting(alert_settings, instance, receiver, build_alert_sensor())


# Per kind: the rule, its episode's subject, and how its condition becomes true (n-th time)
# and false again.
Scenario = tuple[str, str, Callable[[Alerting, int], None], Callable[[Alerting], None]]


def price_up(alerting: Alerting, n: int) -> None:
    alerting.tick("BTC", 120.0 + n)


def price_down(alerting: Alerting) -> None:
    alerting.tick("BTC", 100.0)


def sol_jumps(alerting: Alerting, n: int) -> None:
    if n == 1:  # a minute at 100 first
        for second in range(60, 0, -10):
            alerting.tick("SOL", 100.0, now_ms() - second * 1000)
    alerting.tick("SOL", 115.0 + n)


def sol_back(alerting: Alerting) -> None:
    alerting.tick("SOL", 100.0)


def gap_opens(alerting: Alerting, n: int) -> None:
    start = now_ms() - (20 - n) * MINUTE_MS
    alerting.gap(start)
    alerting.gap_starts.append(start)


def gaps_repaired(alerting: Alerting) -> None:
    for start in alerting.gap_starts:
        alerting.gap(start, "repaired")


SCENARIOS: dict[str, Scenario] = {
    "price": ("btc-above-110", "BTC", price_up, price_down),
    "move": ("sol-jumps", "SOL", sol_jumps, sol_back),
    "gap": ("gap-10-min", "simulated/ETH", gap_opens, gaps_repaired),
    "check": ("hour-incomplete", "completeness/hourly_completeness:hour_complete",
              lambda alerting, _n: alerting.check(passed=False),
              lambda alerting: alerting.check(passed=True)),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(SCENARIOS))
def test_each_kind_fires_once_per_episode_and_again_when_it_comes_back(
    alerting: Alerting, kind: str
) -> None:
    rule, subject, becomes_true, becomes_false = SCENARIOS[kind]
    first, second = f"{rule}:{subject}:1", f"{rule}:{subject}:2"

    quiet = alerting.evaluate()
    becomes_true(alerting, 1)
    fired = alerting.evaluate()
    still = alerting.evaluate()
    becomes_false(alerting)
    cleared = alerting.evaluate()
    becomes_true(alerting, 2)
    again = alerting.evaluate()

    assert "fired" not in str(quiet.skip_reason)
    assert f"fired {first}" in str(fired.skip_reason)
    assert "fired" not in str(still.skip_reason)
    assert f"cleared {rule}:{subject}" in str(cleared.skip_reason)
    assert f"fired {second}" in str(again.skip_reason)
    assert alerting.receiver.ids == [first, second]
    assert alerting.receiver.keys == [first, second]  # the Idempotency-Key
    one, two = alerting.documents()
    assert (one["_id"], two["_id"]) == (first, second)
    assert one["cleared_at_ms"] is not None and two["cleared_at_ms"] is None
    assert one["delivered"] and two["delivered"]
    assert one["kind"] == kind and one["evidence"]


def test_the_evidence_says_why(alerting: Alerting) -> None:
    price_up(alerting, 1)
    sol_jumps(alerting, 1)
    gap_opens(alerting, 1)
    alerting.check(passed=False)

    alerting.evaluate()

    sent = {alert["rule"]: alert for alert in alerting.receiver.received}
    assert sent["btc-above-110"]["evidence"] | {"event_time": None} == {
        "source": "simulated", "price": 121.0, "level": 110.0, "direction": "above",
        "event_time": None,
    }  # fmt: skip
    assert sent["btc-above-110"]["message"].startswith("BTC at 121 is above 110 (simulated, ")
    move = sent["sol-jumps"]["evidence"]
    assert (move["from_price"], move["price"], move["move_pct"], move["ticks"]) == (
        100.0, 116.0, 16.0, 7
    )  # fmt: skip
    gap = sent["gap-10-min"]["evidence"]
    assert (gap["source"], gap["symbol"], gap["status"], gap["open_minutes"]) == (
        "simulated", "ETH", "open", pytest.approx(19, abs=0.2)
    )  # fmt: skip
    check = sent["hour-incomplete"]["evidence"]
    assert (check["passed"], check["partition"], check["description"]) == (
        False, "2026-12-06-10:00", "1 gaps not repaired"
    )  # fmt: skip
    assert {alert["test"] for alert in sent.values()} == {False}


def test_a_receiver_that_is_down_gets_the_alert_once_it_is_back(alerting: Alerting) -> None:
    alerting.receiver.stop()
    price_up(alerting, 1)

    down = alerting.evaluate()
    still_down = alerting.evaluate()
    (recorded,) = alerting.documents()
    alerting.receiver.start()
    back = alerting.evaluate()
    after = alerting.evaluate()

    assert "fired btc-above-110:BTC:1" in str(down.skip_reason)
    assert "did not accept alert btc-above-110:BTC:1: no connection" in str(down.skip_reason)
    assert "fired" not in str(still_down.skip_reason)
    assert not recorded["delivered"] and recorded["attempts"] == 2
    assert TOKEN not in str(down.skip_reason) + recorded["last_error"]
    assert "delivered 1" in str(back.skip_reason) and "delivered" not in str(after.skip_reason)
    assert alerting.receiver.ids == ["btc-above-110:BTC:1"]
    assert alerting.documents()[0]["delivered"]


def test_a_busy_receiver_is_left_alone_until_its_retry_after_is_over(alerting: Alerting) -> None:
    alerting.receiver.answers.append((429, {"Retry-After": "1"}))
    price_up(alerting, 1)

    busy = alerting.evaluate()
    waiting = alerting.evaluate()
    attempts = alerting.receiver.attempts
    time.sleep(1.1)
    done = alerting.evaluate()

    assert "answered HTTP 429 with Retry-After 1s" in str(busy.skip_reason)
    assert "the webhook asked to wait until" in str(waiting.skip_reason)
    assert attempts == 1  # the one 429: nothing sent while it waits
    assert "delivered 1" in str(done.skip_reason)
    assert alerting.receiver.ids == ["btc-above-110:BTC:1"]


@pytest.mark.parametrize(("status", "retry_after"), [(503, "3600"), (500, "inf")])
def test_a_long_retry_after_holds_sends_back_without_putting_the_sensor_to_sleep(
    alerting: Alerting, status: int, retry_after: str
) -> None:
    alerting.receiver.answers.append((status, {"Retry-After": retry_after}))
    price_up(alerting, 1)

    started = time.monotonic()
    busy = alerting.evaluate()
    waiting = alerting.evaluate()

    assert time.monotonic() - started < 5
    assert f"answered HTTP {status} with Retry-After" in str(busy.skip_reason)
    assert "the webhook asked to wait until" in str(waiting.skip_reason)
    assert alerting.receiver.attempts == 1


def test_a_refused_alert_does_not_hold_back_the_next(alerting: Alerting) -> None:
    alerting.receiver.answers.extend([(400, {})] * 2)  # this alert refused, twice
    price_up(alerting, 1)
    alerting.evaluate()  # refused
    gap_opens(alerting, 1)

    result = alerting.evaluate()

    assert "delivered 1" in str(result.skip_reason)
    assert [alert["rule"] for alert in alerting.receiver.received] == ["gap-10-min"]
    assert not alerting.documents()[0]["delivered"]  # btc-above-110:BTC:1, sent again later


def test_an_episode_cleared_just_before_a_crash_fires_again_when_it_recurs(
    alerting: Alerting,
) -> None:
    price_up(alerting, 1)
    while_open = alerting.evaluate().cursor
    price_down(alerting)
    alerting.evaluate()  # cleared; then the process died before this cursor was saved
    price_up(alerting, 2)

    recurred = alerting.evaluate(while_open)

    assert "fired btc-above-110:BTC:2" in str(recurred.skip_reason)
    assert alerting.receiver.ids == ["btc-above-110:BTC:1", "btc-above-110:BTC:2"]


def test_nothing_fires_twice_across_a_restart_of_the_sensor(alerting: Alerting) -> None:
    before = alerting.evaluate().cursor
    price_up(alerting, 1)
    alerting.evaluate()

    alerting.restart()
    restarted = alerting.evaluate()  # with the saved cursor
    lost = alerting.evaluate("", keep=False)  # the cursor reset: read back from MongoDB
    crashed = alerting.evaluate(before, keep=False)  # recorded, then died before the cursor

    for result in (restarted, lost, crashed):
        assert "fired" not in str(result.skip_reason), result.skip_reason
        assert "1 episodes open" in str(result.skip_reason)
    assert alerting.receiver.ids == ["btc-above-110:BTC:1"]
    assert [doc["_id"] for doc in alerting.documents()] == ["btc-above-110:BTC:1"]

    price_down(alerting)  # a lost cursor still knows the episode, so it closes
    cleared = alerting.evaluate("")
    price_up(alerting, 2)
    again = alerting.evaluate()

    assert "cleared btc-above-110:BTC" in str(cleared.skip_reason)
    assert "fired btc-above-110:BTC:2" in str(again.skip_reason)
    assert alerting.receiver.ids == ["btc-above-110:BTC:1", "btc-above-110:BTC:2"]


def test_alerts_are_served_newest_first_with_their_evidence(alerting: Alerting) -> None:
    gap_opens(alerting, 1)
    alerting.evaluate()
    price_up(alerting, 1)
    alerting.evaluate()
    price_down(alerting)
    alerting.evaluate()

    with running_api(alerting.settings) as api:
        served = get(api, "/alerts").json()
        newest = get(api, "/alerts", limit=1).json()
        of_gaps = get(api, "/alerts", rule="gap-10-min").json()
        none_yet = get(api, "/alerts", since="2099-01-01T00:00:00").json()

    price, gap = served
    assert (price["rule"], price["kind"], price["symbol"]) == ("btc-above-110", "price", "BTC")
    assert price["cleared_at"] is not None and price["delivered"] is True
    assert price["evidence"]["price"] == 121.0 and price["message"].startswith("BTC at 121")
    assert (gap["rule"], gap["kind"], gap["symbol"], gap["cleared_at"]) == (
        "gap-10-min", "gap", "ETH", None
    )  # fmt: skip
    assert price["fired_at"] > gap["fired_at"]
    assert [alert["id"] for alert in newest] == [price["id"]]
    assert [alert["id"] for alert in of_gaps] == [gap["id"]]
    assert none_yet == []


def test_the_test_command_sends_a_sample_to_the_receiver(
    tmp_path: Path, alert_settings: Settings, receiver: Receiver
) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump({"rules": RULES}))
    env = {"CRYPTO_ALERT_RULES_FILE": str(rules), "CRYPTO_ALERT_WEBHOOK_URL": receiver.url()}

    sent = run_cli(alert_settings, "alerts", "test", "sol-jumps", env_override=env)
    unknown = run_cli(alert_settings, "alerts", "test", "no-such-rule", env_override=env)

    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == (
        "sent a sample of alert rule 'sol-jumps' to the webhook at 127.0.0.1 (HTTP 200)"
    )
    (sample,) = receiver.received
    assert sample["test"] is True and sample["rule"] == "sol-jumps"
    assert sample["message"].startswith("[test] alert rule 'sol-jumps': SOL rises 10% within 5")
    assert unknown.returncode == 1
    assert "no alert rule 'no-such-rule'" in unknown.stderr and "sol-jumps" in unknown.stderr
    assert TOKEN not in sent.stdout + sent.stderr + unknown.stderr
