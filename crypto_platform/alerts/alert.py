"""An alert: one episode of a rule's condition for one subject, as recorded and as sent.

An episode begins when the condition becomes true for a subject (a coin, a source's coin,
a check) and ends when it no longer holds; its alert is recorded once, with the evidence
that made it fire, and sent once the webhook accepts it. Its id, `<rule>:<subject>:<n>`
(the subject's n-th episode of the rule), is the MongoDB `_id`: an evaluation repeated
after a crash finds the episode recorded instead of recording it twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from crypto_platform.storage.mongo import plain_ints

__all__ = ["Alert", "Finding", "episode_key", "iso", "rule_of"]


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601, UTC."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def episode_key(rule: str, subject: str) -> str:
    """Which rule and subject an episode is of: its alert's id without the episode number."""
    return f"{rule}:{subject}"


def rule_of(key: str) -> str:
    return key.split(":", 1)[0]  # a rule's name holds no ':'


@dataclass(frozen=True)
class Finding:
    """A rule's condition holding for one subject now: what an alert says, and the evidence."""

    subject: str
    symbol: str | None
    message: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Alert:
    """One episode of a rule for one subject, with its delivery."""

    id: str
    rule: str
    kind: str
    subject: str
    symbol: str | None
    episode: int
    message: str
    fired_at_ms: int
    evidence: dict[str, Any] = field(default_factory=dict)
    cleared_at_ms: int | None = None
    delivered: bool = False
    delivered_at_ms: int | None = None
    attempts: int = 0
    last_error: str | None = None

    def document(self) -> dict[str, Any]:
        fields = asdict(self)
        return {"_id": fields.pop("id"), **fields}

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Alert:
        plain = plain_ints(document)
        return cls(id=plain["_id"], **{name: plain[name] for name in _STORED if name in plain})

    def payload(self, *, test: bool = False) -> dict[str, Any]:
        """The webhook's JSON: `text` for chat webhooks (Slack, Mattermost), then the fields."""
        return {
            "text": self.message,
            "id": self.id,
            "rule": self.rule,
            "kind": self.kind,
            "subject": self.subject,
            "symbol": self.symbol,
            "message": self.message,
            "fired_at": iso(self.fired_at_ms),
            "evidence": self.evidence,
            "test": test,
        }


_STORED = [name for name in Alert.__dataclass_fields__ if name != "id"]
