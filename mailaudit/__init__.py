"""mailaudit: a pytest compliance suite that proves a mail server is locked down."""

__version__ = "0.2.0"
