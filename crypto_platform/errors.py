"""One exception hierarchy: everything the platform raises on purpose is a `PlatformError`.

The command line prints these as plain messages (no traceback): they describe a user's
situation (a bad setting, a server down, a port taken) and say how to fix it.
"""

from __future__ import annotations


class PlatformError(Exception):
    """Base of every error the platform raises for a user to read."""


class ConfigurationError(PlatformError):
    """A setting is missing or has a value the platform cannot use."""


class StackError(PlatformError):
    """A local server could not be installed, started, reached or stopped."""
