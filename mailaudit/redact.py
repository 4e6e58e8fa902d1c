"""Removing secrets from anything that may reach a report, a log or a transcript."""

from __future__ import annotations

import os
import re

REDACTED = "[redacted]"

# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_VARS = ("MAILAUDIT_SMTP_PASSWORD", "MAILAUDIT_API_PASSWORD")

_PATTERNS = (
    # SMTP AUTH with an initial response, and the base64 lines of an AUTH dialogue.
    (re.compile(r"(?im)^(C: AUTH \S+) \S+$"), r"\1 " + REDACTED),
    (re.compile(r"(?im)^(C: )(?!AUTH|MAIL|RCPT|EHLO|HELO|RSET|QUIT|STARTTLS|VRFY|EXPN|NOOP|HELP)"
                r"[A-Za-z0-9+/=]{4,}$"), r"\1" + REDACTED),
    # HTTP bearer tokens and JSON token/password fields.
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    (re.compile(r'(?i)("(?:[a-z]*token|password|twoFactorCode)"\s*:\s*)"[^"]*"'),
     r'\1"' + REDACTED + '"'),
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Return text with AUTH exchanges, bearer tokens, token/password fields and known secrets removed."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    for secret in (*secrets, *known_secrets()):
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def known_secrets() -> tuple[str, ...]:
    """The secret values configured in the environment, for blanket removal."""
    return tuple(v for k in SECRET_ENV_VARS if (v := os.environ.get(k)))
