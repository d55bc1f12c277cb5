"""Errors of the composition root itself (configuration, start-up), not of any domain."""


class StartupError(Exception):
    """The service cannot start as configured; the message says what to change."""
