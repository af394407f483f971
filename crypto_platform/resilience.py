"""The backoff and circuit breaker every network loop of the platform uses."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pybreaker
import requests
from tenacity import wait_exponential_jitter
from tenacity.wait import wait_base
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

MAX_RETRY_AFTER_S = 86_400.0


def jittered_backoff(initial: float, maximum: float) -> wait_base:
    """Waits of initial * 2^(n-1) seconds plus up to `initial` of jitter, capped at `maximum`."""
    return wait_exponential_jitter(multiplier=initial, jitter=initial, max=maximum)


class Retryable(Exception):
    """A failed HTTP request worth another try, after `retry_after` s if the server said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_s(response: requests.Response) -> float | None:
    """Retry-After in seconds (a number, fractions too, or an HTTP date); None if unreadable.

    At most `MAX_RETRY_AFTER_S`: a server asking for longer (or for infinity) gets a day.
    """
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = Retry().parse_retry_after(value)  # an HTTP date
        except InvalidHeader:
            return None
    return None if math.isnan(seconds) else min(max(0.0, seconds), MAX_RETRY_AFTER_S)


def circuit_breaker(name: str, fail_max: int, reset_timeout: float) -> pybreaker.CircuitBreaker:
    """Opens after `fail_max` failures in a row; half-opens after `reset_timeout` seconds.

    The call that trips it raises its own error, so the cause is what gets logged.
    """
    return pybreaker.CircuitBreaker(
        fail_max=fail_max, reset_timeout=reset_timeout, name=name, throw_new_error_on_trip=False
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How a network source backs off, and when its circuit opens and half-opens."""

    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    fail_max: int = 5
    reset_timeout: float = 30.0

    def backoff(self) -> wait_base:
        return jittered_backoff(self.backoff_initial, self.backoff_max)

    def breaker(self, name: str) -> pybreaker.CircuitBreaker:
        return circuit_breaker(name, self.fail_max, self.reset_timeout)
