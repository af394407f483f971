"""The `alerts` collection: each episode recorded once, then cleared, and its delivery.

An episode's `_id` is its alert's id (`<rule>:<subject>:<n>`), so recording it is an
insert that a repeated evaluation cannot repeat: it finds the episode still open and
takes it as it is, delivered or not. Every read is bounded by an index: an episode's
predecessor, the open episodes, the undelivered alerts of the last day, the newest alerts.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from crypto_platform.alerts.alert import Alert, Finding, episode_key

__all__ = [
    "INDEXES",
    "clear",
    "ensure_indexes",
    "fire",
    "mark_delivered",
    "mark_failed",
    "open_episodes",
    "recent",
    "undelivered",
]

INDEXES: tuple[tuple[str, list[tuple[str, int]]], ...] = (
    (
        "rule_subject_episode",
        [("rule", ASCENDING), ("subject", ASCENDING), ("episode", DESCENDING)],
    ),
    ("fired_at", [("fired_at_ms", DESCENDING)]),
    ("rule_fired_at", [("rule", ASCENDING), ("fired_at_ms", DESCENDING)]),  # /alerts?rule=
    ("undelivered", [("delivered", ASCENDING), ("fired_at_ms", ASCENDING)]),
    ("open", [("cleared_at_ms", ASCENDING)]),
)


def ensure_indexes(alerts: Collection) -> None:
    for name, keys in INDEXES:
        alerts.create_index(keys, name=name)


def fire(
    alerts: Collection, rule: str, kind: str, finding: Finding, now_ms: int
) -> tuple[Alert, bool]:
    """The subject's open episode of the rule, and whether it was recorded now (not before)."""
    latest = alerts.find_one(
        {"rule": rule, "subject": finding.subject}, sort=[("episode", DESCENDING)]
    )
    if latest is not None and latest.get("cleared_at_ms") is None:
        return Alert.from_document(latest), False  # recorded by an evaluation not in the cursor
    episode = int(latest["episode"]) + 1 if latest is not None else 1
    alert = Alert(
        id=f"{episode_key(rule, finding.subject)}:{episode}",
        rule=rule,
        kind=kind,
        subject=finding.subject,
        symbol=finding.symbol,
        episode=episode,
        message=finding.message,
        fired_at_ms=now_ms,
        evidence=finding.evidence,
    )
    try:
        alerts.insert_one(alert.document())
    except DuplicateKeyError:  # another evaluation recorded it meanwhile: take that record
        return fire(alerts, rule, kind, finding, now_ms)
    return alert, True


def clear(alerts: Collection, alert_id: str, now_ms: int) -> None:
    """The episode is over: its condition no longer holds (kept as it was if already over)."""
    alerts.update_one({"_id": alert_id, "cleared_at_ms": None}, {"$set": {"cleared_at_ms": now_ms}})


def open_episodes(alerts: Collection) -> dict[str, str]:
    """Each open episode's key (rule and subject) and its alert's id."""
    found = alerts.find({"cleared_at_ms": None}, {"rule": 1, "subject": 1})
    return {episode_key(doc["rule"], doc["subject"]): doc["_id"] for doc in found}


def undelivered(alerts: Collection, since_ms: int, limit: int) -> list[Alert]:
    """The oldest alerts fired since `since_ms` that the webhook has not accepted yet."""
    found = alerts.find({"delivered": False, "fired_at_ms": {"$gte": since_ms}})
    return [Alert.from_document(doc) for doc in found.sort("fired_at_ms", ASCENDING).limit(limit)]


def mark_delivered(alerts: Collection, alert_id: str, now_ms: int) -> None:
    alerts.update_one(
        {"_id": alert_id},
        {"$set": {"delivered": True, "delivered_at_ms": now_ms}, "$inc": {"attempts": 1}},
    )


def mark_failed(alerts: Collection, alert_id: str, error: str) -> None:
    alerts.update_one({"_id": alert_id}, {"$set": {"last_error": error}, "$inc": {"attempts": 1}})


def recent(
    alerts: Collection, limit: int, *, since_ms: int | None = None, rule: str | None = None
) -> list[Alert]:
    """The newest alerts (fired since `since_ms`, of `rule`), newest first."""
    query: dict[str, object] = {}
    if since_ms is not None:
        query["fired_at_ms"] = {"$gte": since_ms}
    if rule is not None:
        query["rule"] = rule
    found = alerts.find(query).sort("fired_at_ms", DESCENDING).limit(limit)
    return [Alert.from_document(doc) for doc in found]
