"""`/alerts`: the alerts the rules fired, read from MongoDB's `alerts` collection, newest first.

One MongoDB client per app (`create_app` makes the log, its lifespan closes it), opened on
the first request and kept, as backends.py keeps its own; a read is bounded by its limit,
through the collection's `fired_at` index. Calls block: run them in a thread.
"""

from __future__ import annotations

import datetime as dt
import threading

from pymongo import MongoClient
from pymongo.errors import PyMongoError
from starlette.requests import Request

from crypto_platform.alerts import store
from crypto_platform.alerts.alert import Alert as Fired
from crypto_platform.api.backends import MONGO_TIMEOUT_MS
from crypto_platform.api.errors import BackendUnavailable
from crypto_platform.api.models import Alert
from crypto_platform.api.reasons import reason
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo

__all__ = ["AlertLog", "alert_log"]


class AlertLog:
    """The alerts collection as the API reads it; a failure is `BackendUnavailable`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: MongoClient | None = None
        self._lock = threading.Lock()

    def recent(self, limit: int, since_ms: int | None, rule: str | None) -> list[Alert]:
        """The newest `limit` alerts (fired since `since_ms`, of `rule`), newest first."""
        try:
            alerts = mongo.alerts_collection(self._mongo(), self.settings)
            fired = store.recent(alerts, limit, since_ms=since_ms, rule=rule)
        except PyMongoError as error:
            detail = reason(error, timeout_s=MONGO_TIMEOUT_MS / 1000)
            raise BackendUnavailable("mongodb", detail) from error
        return [_model(alert) for alert in fired]

    def _mongo(self) -> MongoClient:
        with self._lock:
            if self._client is None:
                self._client = mongo.connect(self.settings, timeout_ms=MONGO_TIMEOUT_MS)
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def alert_log(request: Request) -> AlertLog:
    """The app's `AlertLog`."""
    log: AlertLog = request.app.state.alert_log
    return log


def _model(alert: Fired) -> Alert:
    return Alert(
        id=alert.id,
        rule=alert.rule,
        kind=alert.kind,
        subject=alert.subject,
        symbol=alert.symbol,
        message=alert.message,
        fired_at=_moment(alert.fired_at_ms),
        cleared_at=_moment(alert.cleared_at_ms) if alert.cleared_at_ms is not None else None,
        delivered=alert.delivered,
        evidence=alert.evidence,
    )


def _moment(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
