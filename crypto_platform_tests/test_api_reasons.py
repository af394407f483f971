"""The short reasons the API gives for a backend failure, from the drivers' own errors."""

from __future__ import annotations

import pytest
from cassandra import AuthenticationFailed, OperationTimedOut, UnresolvableContactPoints
from cassandra.cluster import NoHostAvailable
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, SaslAuthenticationFailedError
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from crypto_platform.api.reasons import reason

REFUSED = ConnectionRefusedError(111, "Tried connecting to [('db.internal', 9042)]. Refused")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NoHostAvailable("no server", {"db.internal:9042": REFUSED}), "connection refused"),
        (UnresolvableContactPoints({}), "host name not found"),
        (
            ServerSelectionTimeoutError(
                "mongo.internal:27017: [Errno -2] Name or service not known, Timeout: 2.0s"
            ),
            "host name not found",
        ),
        (OperationFailure("Authentication failed.", code=18), "authentication failed"),
        (
            NoHostAvailable("no server", {"db.internal:9042": AuthenticationFailed("db.internal")}),
            "authentication failed",
        ),
        (SaslAuthenticationFailedError("bad password for kafka.internal"), "authentication failed"),
        (KafkaConnectionError("kafka.internal:9092 went away"), "not reachable"),
        (KafkaTimeoutError("Unable to bootstrap from kafka.internal:9092"), "timed out after 2 s"),
        (OperationTimedOut("errors={'db.internal:9042': 'timeout'}"), "timed out after 2 s"),
        (ValueError("db.internal exploded"), "failed (ValueError)"),
    ],
)
def test_a_driver_error_becomes_a_fixed_phrase_without_its_host(
    error: BaseException, expected: str
) -> None:
    said = reason(error, timeout_s=2)

    assert expected in said
    assert "internal" not in said and "9042" not in said
