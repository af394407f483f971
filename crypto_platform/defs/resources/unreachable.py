"""A store that is down fails a report or check run with one sentence, not a traceback."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from crypto_platform.diagnostics import explain_unreachable
from crypto_platform.settings import Settings


@contextmanager
def explained(settings: Settings) -> Iterator[None]:
    """Turn "cannot reach the server" into a `dg.Failure` naming it and the setting to change."""
    try:
        yield
    except Exception as error:
        message = explain_unreachable(error, settings)
        if message is None:
            raise
        raise dg.Failure(description=message, allow_retries=True) from None
