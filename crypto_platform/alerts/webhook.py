"""The webhook: each alert POSTed as JSON, with timeouts, retries with backoff, Retry-After.

HTTP through `requests`; retries through tenacity, with the platform's jittered backoff
(`resilience.py`): a network error, a timeout, 408, 425, 429 or a 5xx is tried again, up to
`attempts` times. An answer with a Retry-After longer than the caller will wait
(`max_retry_after_s`: the sensor waits none, it has other work; a day at most) is
`ReceiverBusy`, with that delay: nothing is sent to the receiver before it is over. Any
other answer from 300 on is `Refused` (a wrong URL or token, a payload it rejects:
retrying this alert now won't help). Each request carries the
alert's id as `Idempotency-Key`, so a receiver can drop the rare second delivery (an
alert accepted just before a crash, before its delivery was recorded).

The URL can hold a token: only its host is ever shown, and no error is quoted whole
(`requests` puts the URL in its messages).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from crypto_platform.alerts.alert import Alert
from crypto_platform.errors import PlatformError
from crypto_platform.resilience import Retryable, jittered_backoff, retry_after_s
from crypto_platform.settings import Settings

__all__ = ["DeliveryFailed", "ReceiverBusy", "Webhook", "webhook_for"]

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 4.0


class DeliveryFailed(PlatformError):
    """The webhook did not accept an alert; it is sent again at the next evaluation."""


class Refused(DeliveryFailed):
    """The receiver refused this alert (a 4xx): sending it again now would not help."""


class ReceiverBusy(DeliveryFailed):
    """The receiver asked to wait (Retry-After) `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Webhook:
    """One receiver of alerts."""

    def __init__(
        self,
        url: SecretStr,
        *,
        timeout_s: float,
        attempts: int,
        max_retry_after_s: float = 0.0,
    ) -> None:
        self._url = url
        self.host = urlsplit(url.get_secret_value()).hostname or "?"
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.max_retry_after_s = max_retry_after_s
        self.session = requests.Session()
        # Retries are ours (tenacity), not urllib3's.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._backoff = jittered_backoff(BACKOFF_INITIAL_S, BACKOFF_MAX_S)

    def send(self, alert: Alert, *, test: bool = False) -> int:
        """POST the alert; its HTTP status once accepted, else `DeliveryFailed`."""
        retrying = Retrying(
            retry=retry_if_exception_type(Retryable),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            reraise=True,
        )
        try:
            return retrying(self._post, alert, test)
        except Retryable as error:
            raise DeliveryFailed(
                f"the webhook at {self.host} did not accept alert {alert.id}: {error} "
                f"(after {self.attempts} attempts)"
            ) from None

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, Retryable) and error.retry_after is not None:
            return error.retry_after
        return self._backoff(state)

    def _post(self, alert: Alert, test: bool) -> int:
        try:
            response = self.session.post(
                self._url.get_secret_value(),
                json=alert.payload(test=test),
                headers={"Idempotency-Key": alert.id},
                timeout=self.timeout_s,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise Retryable(f"no answer within {self.timeout_s:g}s") from None
        except requests.RequestException as error:
            raise Retryable(f"no connection ({type(error).__name__})") from None
        status = response.status_code
        if status < 300:
            return status
        retry_after = retry_after_s(response)
        if retry_after is not None and retry_after > self.max_retry_after_s:
            raise ReceiverBusy(  # whatever the status: the sensor never sleeps on it
                f"the webhook at {self.host} answered HTTP {status} with Retry-After "
                f"{retry_after:g}s",
                retry_after,
            )
        if status in RETRYABLE_STATUS:
            raise Retryable(f"HTTP {status}", retry_after)
        raise Refused(
            f"the webhook at {self.host} refused alert {alert.id}: HTTP {status} "
            f"{response.text[:200]!r}"
        )

    def close(self) -> None:
        self.session.close()


def webhook_for(settings: Settings, *, max_retry_after_s: float = 0.0) -> Webhook | None:
    """The configured webhook (`CRYPTO_ALERT_WEBHOOK_URL`), or None when it is unset."""
    if settings.alert_webhook_url is None:
        return None
    return Webhook(
        settings.alert_webhook_url,
        timeout_s=settings.alert_webhook_timeout_s,
        attempts=settings.alert_webhook_attempts,
        max_retry_after_s=max_retry_after_s,
    )
