"""The few named errors every probe failure is translated into, once, at the edge.

Each carries one plain line naming what was probed ("mail.example.com:25: no greeting within
10 s"); the pytest plugin shows that line instead of a traceback.
"""

from __future__ import annotations


class MailauditError(Exception):
    """Base of every error the suite raises on purpose."""


class ConfigError(MailauditError):
    """A bad option, policy, waiver or catalog: the run stops before any probe."""


class ProbeError(MailauditError):
    """A probe could not run or could not finish; its tests are errors, never passes.

    ``evidence`` may carry what was gathered before the failure (a partial transcript); the plugin
    attaches it to the error's record."""

    def __init__(self, message: str, evidence: str = "", evidence_name: str = "partial evidence") -> None:
        super().__init__(message)
        self.evidence = evidence
        self.evidence_name = evidence_name


class ConnectError(ProbeError):
    """The TCP connection could not be made (refused, unreachable, timed out)."""


class ProtocolTimeout(ProbeError):
    """The peer accepted the connection but did not answer within the timeout."""


class ProtocolError(ProbeError):
    """The peer answered something the protocol does not allow, or closed the connection."""


class TlsError(ProbeError):
    """A TLS handshake or scan could not be completed."""


class DnsError(ProbeError):
    """A DNS query failed (SERVFAIL, timeout, refused); NXDOMAIN/NODATA are answers, not errors."""


class ApiError(ProbeError):
    """The SmarterMail API could not be used (login refused, HTTP 5xx, malformed reply)."""


class PortClosed(ConnectError):
    """The TCP connection was actively refused: nothing listens on that port."""


class CannotJudge(ProbeError):
    """The probe ran, but what came back cannot decide this requirement (a scan command that
    failed, an answer the evaluator cannot read). Raised by evaluators instead of a verdict."""


class BudgetExceeded(ProbeError):
    """A bound of the policy was reached (a deadline, a size, a count): the probe stopped there.
    The message names the bound and its policy key; what was gathered before stays as evidence."""
