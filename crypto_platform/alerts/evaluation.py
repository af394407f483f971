"""One evaluation of the rules: episodes opened and closed, then the alerts not yet delivered sent.

A subject whose condition became true opens an episode: its alert is recorded (store.py),
with the evidence, before anything is sent. An open episode closes when its condition no
longer holds (not when it could not be read: a store that did not answer, a price too old),
or when its rule left the file. Then the alerts the webhook has not accepted yet (of the
last `DELIVERY_HORIZON_MS`, oldest first, at most `MAX_SENDS` per evaluation) are sent;
the first that fails ends the sending until the next evaluation, and a Retry-After holds
every send back until it is over.

Which episodes are open is read from MongoDB at each evaluation (one read of the open
ones): a cursor can be older than the store (an evaluation that recorded or cleared an
episode, then died before its cursor was saved), so an episode still open is never opened,
recorded or sent again, nor one cleared taken for open. The cursor (`Episodes`) keeps until
when the receiver asked to wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from pymongo.collection import Collection

from crypto_platform.alerts import store
from crypto_platform.alerts.alert import Alert, episode_key, iso, rule_of
from crypto_platform.alerts.conditions import CheckOutcome, Conditions
from crypto_platform.alerts.rules import CheckRule, Rule
from crypto_platform.alerts.webhook import (
    DeliveryFailed,
    ReceiverBusy,
    Refused,
    Webhook,
    webhook_for,
)
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo
from crypto_platform.ticks import now_ms

__all__ = ["Episodes", "Evaluation", "evaluate", "run_evaluation"]

DELIVERY_HORIZON_MS = 86_400_000  # an alert not delivered within a day is no longer sent
MAX_SENDS = 20


@dataclass
class Episodes:
    """The episodes open (`<rule>:<subject>` and the alert's id) and the receiver's wait.

    Only the wait goes into the cursor: the open episodes are MongoDB's.
    """

    open: dict[str, str] = field(default_factory=dict)
    not_before_ms: int = 0

    def cursor(self) -> str:
        return json.dumps({"not_before_ms": self.not_before_ms})

    @classmethod
    def from_cursor(cls, cursor: str | None) -> Episodes | None:
        """The wait a cursor holds; None without one (or one of another shape)."""
        try:
            state = json.loads(cursor or "null")
            return cls(not_before_ms=int(state["not_before_ms"])) if state else None
        except (ValueError, TypeError, KeyError):
            return None


@dataclass
class Evaluation:
    """What one evaluation did, and the episodes after it."""

    episodes: Episodes
    fired: list[Alert] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    delivery: str | None = None  # why sending stopped or waits

    def summary(self) -> str:
        parts = [f"{len(self.episodes.open)} episodes open"]
        parts += [f"fired {', '.join(alert.id for alert in self.fired)}"] if self.fired else []
        parts += [f"cleared {', '.join(self.cleared)}"] if self.cleared else []
        parts += [f"delivered {len(self.delivered)}"] if self.delivered else []
        parts += [f"not read: {', '.join(self.unknown)}"] if self.unknown else []
        parts += [f"delivery: {self.delivery}"] if self.delivery else []
        return "; ".join(parts)


def evaluate(
    alerts: Collection,
    rules: list[Rule],
    conditions: Conditions,
    episodes: Episodes | None,
    webhook: Webhook | None,
) -> Evaluation:
    """Evaluate `rules` at `conditions.now_ms`, after `episodes` (None: the first time)."""
    now = conditions.now_ms
    if episodes is None:
        store.ensure_indexes(alerts)
        episodes = Episodes()
    episodes.open = store.open_episodes(alerts)
    result = Evaluation(episodes)
    for rule in rules:
        seen = conditions.observe(rule)
        for subject, finding in seen.firing.items():
            key = episode_key(rule.name, subject)
            if key not in episodes.open:
                alert, recorded = store.fire(alerts, rule.name, rule.kind, finding, now)
                episodes.open[key] = alert.id
                if recorded:
                    result.fired.append(alert)
        result.unknown += [episode_key(rule.name, subject) for subject in sorted(seen.unknown)]
        for key in [k for k in episodes.open if rule_of(k) == rule.name]:
            subject = key.removeprefix(f"{rule.name}:")
            if subject not in seen.firing and subject not in seen.unknown:
                _clear(alerts, episodes, key, result, now)
    names = {rule.name for rule in rules}
    for key in [k for k in episodes.open if rule_of(k) not in names]:
        _clear(alerts, episodes, key, result, now)
    if webhook is not None:
        _deliver(alerts, webhook, result, now)
    return result


def _clear(alerts: Collection, episodes: Episodes, key: str, result: Evaluation, now: int) -> None:
    store.clear(alerts, episodes.open.pop(key), now)
    result.cleared.append(key)


def _deliver(alerts: Collection, webhook: Webhook, result: Evaluation, now: int) -> None:
    episodes = result.episodes
    if now < episodes.not_before_ms:
        result.delivery = f"the webhook asked to wait until {iso(episodes.not_before_ms)}"
        return
    for alert in store.undelivered(alerts, now - DELIVERY_HORIZON_MS, MAX_SENDS):
        try:
            webhook.send(alert)
        except DeliveryFailed as error:
            store.mark_failed(alerts, alert.id, str(error))
            result.delivery = str(error)
            if isinstance(error, Refused):
                continue  # this alert's own fault: the next ones may go through
            if isinstance(error, ReceiverBusy):
                episodes.not_before_ms = now + int(error.retry_after * 1000)
            return
        store.mark_delivered(alerts, alert.id, now_ms())
        result.delivered.append(alert.id)


def run_evaluation(
    settings: Settings,
    rules: list[Rule],
    checks: Callable[[CheckRule], CheckOutcome | None],
    episodes: Episodes | None,
) -> Evaluation:
    """One evaluation against the configured MongoDB and webhook, now (the sensor's body)."""
    client = mongo.connect(settings)
    webhook = webhook_for(settings)
    try:
        conditions = Conditions(
            mongo.prices_collection(client, settings),
            mongo.gaps_collection(client, settings),
            checks,
            symbols=list(settings.symbols),
            max_age_ms=int(settings.check_tick_max_age_s * 1000),
            now_ms=now_ms(),
        )
        alerts = mongo.alerts_collection(client, settings)
        return evaluate(alerts, rules, conditions, episodes, webhook)
    finally:
        client.close()
        if webhook is not None:
            webhook.close()
