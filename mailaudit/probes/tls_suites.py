"""Lean cipher-suite enumeration: the version check, elimination, and one enumeration per TLS stack.

sslyze tries every suite it knows on its own connection: 533 handshakes per port, most of them for
versions the server refuses anyway. Here the suites are split into *groups* the way sslyze splits
them — SSL 2.0/3.0 and TLS 1.0/1.1 with nassl's legacy OpenSSL, TLS 1.2 between the legacy and the
modern OpenSSL (each suite with the client sslyze would use for it), TLS 1.3 with the modern one —
and each group is enumerated by *elimination*: one ClientHello offers every suite of the group; if
the server picks one, that suite is accepted and the next ClientHello offers the rest; when the
server refuses a ClientHello, every suite in it is rejected. The first ClientHello of a group is
its version check: a refused version costs one handshake, a group (accepted suites + 1).

Elimination rests on what a TLS server does: it picks a suite it supports among those offered and
refuses only when there is none. Where an answer is anything else — a timeout, an alert that may be
the client's own failure, a DH group too small for the client, a suite that was not offered, a
client certificate request — the rest of the group is tested as sslyze tests it, one suite per
connection with sslyze's own function; so a version check that cannot decide is never taken for a
refusal. The result is sslyze's ``CipherSuitesScanResult`` with the same accepted and rejected
(offerable) suites a one-by-one scan finds; suites the client cannot offer at a version are
skipped, as sslyze skips them.

Ports of one server that present the same TLS stack are enumerated once: ``Fingerprint`` holds what
every port answers anyway (the pre-flight's negotiation, each group's version check: the suite the
server picked or its refusal, the key exchange, the certificate chain). A port whose fingerprint
equals an earlier port's is checked against that port's enumeration with ``verification_checks``
(the last ClientHello the server accepted must get the same pick; the suites it rejected must
still be refused) and adopts it only if all checks hold and sharing saves most of the handshakes;
otherwise it is enumerated itself. Network I/O only in ``handshake``; no pytest.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache

from nassl import _nassl
from nassl.ephemeral_key_info import EphemeralKeyInfo
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import ClientCertificateRequested, OpenSslVerifyEnum, OpenSslVersionEnum, SslClient
from sslyze import ServerNetworkConfiguration, ServerNetworkLocation
from sslyze.connection_helpers.tls_connection import SslConnection
from sslyze.errors import (
    ConnectionToServerFailed,
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import (
    CipherSuiteAcceptedByServer,
    CipherSuiteRejectedByServer,
)
from sslyze.plugins.openssl_cipher_suites._tls12_workaround import WorkaroundForTls12ForCipherSuites
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite, CipherSuitesRepository
from sslyze.plugins.openssl_cipher_suites.implementation import CipherSuitesScanResult
from sslyze.server_connectivity import ClientAuthRequirementEnum, ServerTlsProbingResult, TlsVersionEnum

LEGACY, MODERN = "legacy", "modern"
VERSIONS: dict[str, TlsVersionEnum] = {
    "SSLv2": TlsVersionEnum.SSL_2_0,
    "SSLv3": TlsVersionEnum.SSL_3_0,
    "TLSv1.0": TlsVersionEnum.TLS_1_0,
    "TLSv1.1": TlsVersionEnum.TLS_1_1,
    "TLSv1.2": TlsVersionEnum.TLS_1_2,
    "TLSv1.3": TlsVersionEnum.TLS_1_3,
}
# A refusal without an alert (the server closed or reset the connection) looks the same as a
# connection lost by accident: it counts only once seen twice (``Elimination`` repeats that
# ClientHello, unless another port of the server with every same answer saw it too).
CLOSES = (
    "Server closed the connection during the TLS handshake",
    "Server rejected the connection",
    "Server interrupted the TLS handshake",
)
# sslyze's messages for a server refusing the ClientHello as a whole (an alert or a close before
# any suite was chosen); every other rejection message may come from the client's side of one
# particular suite, and then the rest of the group goes one suite at a time.
REFUSALS = (
    "TLS alert: handshake failure",
    "TLS alert: protocol version",
    "TLS alert: insufficient security",
    "TLS error: wrong version number",
    "TLS error: wrong SSL version",
    "TLS error: no cipher match",
    "TLS error: peer error no cipher",
    "TLS error: no ciphers list",
    *CLOSES,
)
SHARE_FACTOR = 2  # share an enumeration only where it saves at least twice the handshakes it costs


# --- the groups --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SuiteGroup:
    """The suites of one version that one client (legacy or modern OpenSSL) offers, weakest first."""

    version: str
    client: str
    suites: tuple[CipherSuite, ...]

    @property
    def key(self) -> str:
        """``TLSv1.2 legacy`` — names the group in evidence."""
        return f"{self.version} {self.client}"

    @property
    def tls_version(self) -> TlsVersionEnum:
        """sslyze's enum for the version."""
        return VERSIONS[self.version]

    def by_name(self, openssl_name: str) -> CipherSuite | None:
        """The group's suite with this OpenSSL name."""
        return next((s for s in self.suites if s.openssl_name == openssl_name), None)


@cache
def suite_groups() -> tuple[SuiteGroup, ...]:
    """Every group, oldest version first (computed once, offline: no connection)."""
    groups = []
    for version, enum in VERSIONS.items():
        by_client: dict[str, list[CipherSuite]] = {LEGACY: [], MODERN: []}
        for suite in CipherSuitesRepository.get_all_cipher_suites(enum):
            client = _client_for(enum, suite)
            if _offerable(enum, suite, client):
                by_client[client].append(suite)
        for client in (LEGACY, MODERN):
            if by_client[client]:
                groups.append(SuiteGroup(version, client, tuple(sorted(by_client[client], key=_weakest_first))))
    return tuple(groups)


def offerable_count(version: str) -> int:
    """How many suites of a version a one-by-one scan can offer (accepted + rejected)."""
    return sum(len(g.suites) for g in suite_groups() if g.version == version)


def _client_for(version: TlsVersionEnum, suite: CipherSuite) -> str:
    """The client sslyze's one-by-one scan uses for this suite."""
    if version is TlsVersionEnum.TLS_1_3:
        return MODERN
    if version is TlsVersionEnum.TLS_1_2:
        return LEGACY if WorkaroundForTls12ForCipherSuites.requires_legacy_openssl(suite.openssl_name) else MODERN
    return LEGACY


def _offerable(version: TlsVersionEnum, suite: CipherSuite, client: str) -> bool:
    """Can the client put this suite into a ClientHello at this version? sslyze finds out on a
    real connection ("no ciphers available", then skips the suite); here a ClientHello is started
    into a local socket pair whose other end is closed, so nothing leaves the machine."""
    cls = LegacySslClient if client == LEGACY else SslClient
    ssl_client = cls(ssl_version=OpenSslVersionEnum(version.value), ssl_verify=OpenSslVerifyEnum.NONE)
    _set_suites(ssl_client, version, suite.openssl_name)
    ours, theirs = socket.socketpair()
    theirs.close()
    with ours:
        ours.settimeout(1)
        ssl_client.set_underlying_socket(ours)
        try:
            ssl_client.do_handshake()
        except _nassl.OpenSSLError as exc:
            return "no ciphers available" not in str(exc.args[0] if exc.args else exc)
        except OSError:
            return True  # the ClientHello went out; the closed peer ended it
    return True


def _set_suites(ssl_client, version: TlsVersionEnum, names: str) -> None:
    if version is TlsVersionEnum.TLS_1_3:
        ssl_client.set_ciphersuites(names)
    else:
        ssl_client.set_cipher_list(names)


_WEAK_MARKS = (("NULL",), ("ANON",), ("EXPORT",), ("RC4", "RC2"), ("_DES_", "DES_40", "DES_64", "DES40"),
               ("3DES", "DES_192", "EDE"), ("IDEA", "SEED"))


def _weakest_first(suite: CipherSuite) -> tuple[int, str]:
    """Order of the ClientHello: the weakest suites first, so that a server that follows the
    client's order picks the weakest it accepts (its version check then says the most)."""
    name = suite.name.upper()
    for rank, marks in enumerate(_WEAK_MARKS):
        if any(mark in name for mark in marks):
            return rank, name
    kex = name.split("_WITH_")[0] if "_WITH_" in name else "TLS13"
    if not kex.startswith(("TLS_ECDHE", "TLS_DHE", "TLS13")):
        return len(_WEAK_MARKS), name
    return len(_WEAK_MARKS) + (1 if "CBC" in name else 2), name


# --- one handshake -----------------------------------------------------------------------------

class AnswerKind(StrEnum):
    """What one ClientHello got."""

    ACCEPTED = "accepted"        # the server picked one of the offered suites
    REJECTED = "rejected"        # the server refused the ClientHello as a whole
    UNCLEAR = "unclear"          # neither can be told (timeout, a client-side failure, ...)
    CLIENT_AUTH = "client_auth"  # the server asked for a client certificate
    FAILED = "failed"            # no TLS answer at all (TCP, STARTTLS): an error of the scan


@dataclass(frozen=True)
class Answer:
    """The answer to one ClientHello."""

    kind: AnswerKind
    detail: str = ""  # sslyze's one-line reason (REJECTED, UNCLEAR, FAILED)
    suite: str = ""  # OpenSSL name of the suite the server picked (ACCEPTED)
    ephemeral: EphemeralKeyInfo | None = field(default=None, compare=False)
    chain_sha256: str = ""  # SHA-256 over the received certificate chain (ACCEPTED, "" without one)
    error: Exception | None = field(default=None, compare=False)  # FAILED: sslyze's exception

    @property
    def closed(self) -> bool:
        """A refusal by closing the connection, without a TLS alert."""
        return self.kind is AnswerKind.REJECTED and self.detail.startswith(CLOSES)

    @property
    def summary(self) -> str:
        """The answer as a fingerprint item: the pick and its key exchange, or the refusal."""
        if self.kind is AnswerKind.ACCEPTED:
            return f"accepted {self.suite} {describe_key(self.ephemeral)}".rstrip()
        return f"{self.kind.value}: {self.detail}"


def describe_key(key: EphemeralKeyInfo | None) -> str:
    """``ECDH X25519 253 bits``, ``DH 2048 bits``, or "" (no ephemeral key)."""
    if key is None:
        return ""
    curve = getattr(key, "curve_name", "")
    return f"{key.type_name} {curve} {key.size} bits".replace("  ", " ")


def handshake(location: ServerNetworkLocation, network: ServerNetworkConfiguration, group: SuiteGroup,
              suites: Sequence[CipherSuite]) -> Answer:
    """One connection (STARTTLS included) and one ClientHello offering ``suites``; never raises for
    what a server does."""
    connection = SslConnection(server_location=location, network_configuration=network,
                               tls_version=group.tls_version, should_ignore_client_auth=False,
                               should_use_legacy_openssl=group.client == LEGACY)
    _set_suites(connection.ssl_client, group.tls_version, ":".join(s.openssl_name for s in suites))
    try:
        connection.connect()
        return _accepted(connection.ssl_client, suites)
    except ClientCertificateRequested:
        return Answer(AnswerKind.CLIENT_AUTH, "the server asked for a client certificate")
    except ServerRejectedTlsHandshake as exc:
        refused = any(exc.error_message.startswith(r.rstrip()) for r in REFUSALS)
        return Answer(AnswerKind.REJECTED if refused else AnswerKind.UNCLEAR, exc.error_message)
    except (TlsHandshakeTimedOut, ServerTlsConfigurationNotSupported) as exc:
        return Answer(AnswerKind.UNCLEAR, exc.error_message)
    except ConnectionToServerFailed as exc:
        return Answer(AnswerKind.FAILED, exc.error_message, error=exc)
    except (_nassl.OpenSSLError, OSError) as exc:
        return Answer(AnswerKind.UNCLEAR, f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()


def _accepted(ssl_client, suites: Sequence[CipherSuite]) -> Answer:
    name = ssl_client.get_current_cipher_name()
    suite = next((s for s in suites if s.openssl_name == name), None)
    if suite is None:
        return Answer(AnswerKind.UNCLEAR, f"the server picked {name}, which was not offered")
    chain = "" if suite.is_anonymous else _chain_hash(ssl_client)
    return Answer(AnswerKind.ACCEPTED, suite=name, ephemeral=ssl_client.get_ephemeral_key(), chain_sha256=chain)


def _chain_hash(ssl_client) -> str:
    try:
        chain = ssl_client.get_received_chain()
    except (_nassl.OpenSSLError, ValueError):
        return ""
    return hashlib.sha256("".join(chain).encode()).hexdigest() if chain else ""


# --- elimination -------------------------------------------------------------------------------

class Phase(StrEnum):
    """Where the enumeration of one group stands."""

    ELIMINATING = "eliminating"  # the next ClientHello offers every suite not yet accepted
    ONE_BY_ONE = "one_by_one"    # an unclear answer: the rest is tested one suite per connection
    DONE = "done"
    FAILED = "failed"            # a connection failed: the version's scan command is an error


@dataclass
class Elimination:
    """The enumeration of one group on one port, fed with answers (no I/O of its own)."""

    group: SuiteGroup
    remaining: list[CipherSuite] = field(default_factory=list)
    accepted: list[CipherSuiteAcceptedByServer] = field(default_factory=list)
    rejected: list[CipherSuiteRejectedByServer] = field(default_factory=list)
    rounds: list[tuple[tuple[CipherSuite, ...], Answer]] = field(default_factory=list)
    phase: Phase = Phase.ELIMINATING
    pending: Answer | None = None  # a refusal by a closed connection, not yet seen twice
    unclear: str = ""  # why the rest went one suite at a time
    error: Exception | None = None  # the connection error (FAILED), or sslyze's exception (one by one)
    waiting: int = 0  # one-by-one tests not answered yet
    single_tests_started: bool = False  # the one-by-one tests have been queued

    def __post_init__(self) -> None:
        if not self.remaining:
            self.remaining = list(self.group.suites)

    @property
    def first(self) -> Answer | None:
        """The answer to the version check (the first ClientHello), once there is one."""
        return self.rounds[0][1] if self.rounds else None

    @property
    def finished(self) -> bool:
        """Nothing more to ask."""
        return self.phase in (Phase.DONE, Phase.FAILED)

    @property
    def clean(self) -> bool:
        """Finished by elimination alone: every answer was a pick or a refusal."""
        return self.phase is Phase.DONE and not self.unclear

    @property
    def handshakes(self) -> int:
        """ClientHellos sent by elimination (one-by-one tests not counted)."""
        return len(self.rounds)

    @property
    def repeats(self) -> int:
        """ClientHellos sent again to confirm a refusal by a closed connection."""
        offers = [offered for offered, _ in self.rounds]
        return sum(1 for i in range(1, len(offers)) if offers[i] == offers[i - 1])

    def offer(self) -> tuple[CipherSuite, ...]:
        """The next ClientHello's suites while eliminating (the same again to confirm a refusal by a
        closed connection), else ()."""
        return tuple(self.remaining) if self.phase is Phase.ELIMINATING and self.remaining else ()

    def record(self, offered: tuple[CipherSuite, ...], answer: Answer) -> None:
        """Take the answer to the ClientHello that offered ``offered``."""
        self.rounds.append((offered, answer))
        if answer.kind is AnswerKind.ACCEPTED:
            self.pending = None
            suite = self.group.by_name(answer.suite)
            assert suite is not None and suite in self.remaining, answer.suite
            self.accepted.append(CipherSuiteAcceptedByServer(cipher_suite=suite, ephemeral_key=answer.ephemeral))
            self.remaining.remove(suite)
            if not self.remaining:
                self.phase = Phase.DONE
        elif answer.kind is AnswerKind.REJECTED:
            if answer.closed and self.pending is None:
                self.pending = answer  # ask once more before taking it
            else:
                self._refused(answer)
        elif answer.kind is AnswerKind.FAILED:
            self.error, self.phase = answer.error, Phase.FAILED
        else:
            self.pending = None
            self.go_one_by_one(answer.detail)

    def corroborate(self) -> None:
        """Another port with every same answer saw this refusal by a closed connection too."""
        if self.pending is not None and self.phase is Phase.ELIMINATING:
            self._refused(self.pending)

    def _refused(self, answer: Answer) -> None:
        self.rejected.extend(CipherSuiteRejectedByServer(cipher_suite=s, error_message=answer.detail)
                             for s in self.remaining)
        self.remaining, self.pending, self.phase = [], None, Phase.DONE

    def go_one_by_one(self, why: str) -> None:
        """Test what is left one suite per connection (sslyze's way)."""
        self.unclear = why or "unclear answer"
        self.pending, self.phase = None, Phase.ONE_BY_ONE
        self.waiting = len(self.remaining)
        if not self.waiting:
            self.phase = Phase.DONE

    def record_single(self, suite: CipherSuite, result: object, error: Exception | None) -> None:
        """Take sslyze's answer for one suite (None: the client could not offer it after all)."""
        if error is not None and self.error is None:
            self.error = error
        elif isinstance(result, CipherSuiteAcceptedByServer):
            self.accepted.append(result)
        elif isinstance(result, CipherSuiteRejectedByServer):
            self.rejected.append(result)
        self.waiting -= 1
        if not self.waiting:
            self.remaining = []
            self.phase = Phase.FAILED if self.error is not None else Phase.DONE

    @property
    def picks(self) -> list[tuple[tuple[CipherSuite, ...], Answer]]:
        """The ClientHellos the server picked a suite from, in order."""
        return [(offered, a) for offered, a in self.rounds if a.kind is AnswerKind.ACCEPTED]

    @property
    def refusal(self) -> tuple[tuple[CipherSuite, ...], Answer] | None:
        """The ClientHello whose refusal ended the enumeration (its suites are the rejected ones)."""
        refused = [(offered, a) for offered, a in self.rounds if a.kind is AnswerKind.REJECTED]
        return refused[-1] if refused and self.phase is Phase.DONE and not self.unclear else None

    @property
    def client_order(self) -> bool:
        """The server picked in the order of the ClientHello (its weakest suite first)."""
        positions = [self.group.suites.index(self.group.by_name(a.suite)) for _, a in self.picks]
        return positions == sorted(positions)


def version_result(version: str, eliminations: Sequence[Elimination]) -> CipherSuitesScanResult:
    """sslyze's result for one version, from its finished groups (sorted as sslyze sorts)."""
    accepted = [a for e in eliminations for a in e.accepted]
    rejected = [r for e in eliminations for r in e.rejected]
    return CipherSuitesScanResult(
        tls_version_used=VERSIONS[version],
        accepted_cipher_suites=sorted(accepted, key=lambda a: a.cipher_suite.name, reverse=True),
        rejected_cipher_suites=sorted(rejected, key=lambda r: r.cipher_suite.name, reverse=True),
    )


# --- what sslyze's connectivity test would have found ------------------------------------------

@cache
def _modern_tls12_names() -> frozenset[str]:
    client = SslClient(ssl_version=OpenSslVersionEnum.TLSV1_2, ssl_verify=OpenSslVerifyEnum.NONE)
    client.set_cipher_list("ALL:COMPLEMENTOFALL:-PSK:-SRP")
    return frozenset(client.get_cipher_list())


def probing_result(eliminations: Mapping[str, Elimination]) -> ServerTlsProbingResult | str:
    """The highest version sslyze's connectivity test reaches with its default client for that
    version, and a suite it would use there (the plugins connect with it); or, as sslyze would
    say it, why no scan can run."""
    accepted = {v: [a.cipher_suite for e in eliminations.values() if e.group.version == v for a in e.accepted]
                for v in VERSIONS}
    for version in ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1.0", "SSLv3"):
        usable = accepted[version]
        if version == "TLSv1.2":
            usable = [s for s in usable if s.openssl_name in _modern_tls12_names()]
        if usable:
            suite = _first_pick(eliminations, version, usable)
            ecdh = version == "TLSv1.3" or any("ECDH" in s.openssl_name for s in accepted[version])
            return ServerTlsProbingResult(highest_tls_version_supported=VERSIONS[version],
                                          cipher_suite_supported=suite.openssl_name,
                                          client_auth_requirement=ClientAuthRequirementEnum.DISABLED,
                                          supports_ecdh_key_exchange=ecdh and version in ("TLSv1.2", "TLSv1.3"))
    if accepted["SSLv2"]:
        return ("WARNING: Server only supports SSL 2.0 and is therefore affected by critical vulnerabilities. "
                "Update the server's software as soon as possible.")
    return "TLS probing failed: could not find a TLS version and cipher suite supported by the server"


def _first_pick(eliminations: Mapping[str, Elimination], version: str, usable: list[CipherSuite]) -> CipherSuite:
    """The suite the version check got, if usable, else the first usable one (deterministic)."""
    for elimination in eliminations.values():
        first = elimination.first
        if elimination.group.version == version and first is not None and first.kind is AnswerKind.ACCEPTED:
            suite = elimination.group.by_name(first.suite)
            if suite in usable:
                return suite
    return usable[0]


# --- one enumeration per TLS stack -------------------------------------------------------------

@dataclass(frozen=True)
class Fingerprint:
    """What a port answers to the cheap handshakes every port gets anyway."""

    negotiated: str  # the pre-flight's version and suite (Python's OpenSSL)
    answers: tuple[tuple[str, str], ...]  # (group, its version check's pick and key exchange, or refusal)
    chains: tuple[str, ...]  # SHA-256 of each distinct certificate chain received

    @property
    def handshakes(self) -> int:
        """How many handshakes it compares (the pre-flight's and one per group)."""
        return 1 + len(self.answers)


def fingerprint(negotiated: str, eliminations: Mapping[str, Elimination]) -> Fingerprint | None:
    """The port's fingerprint, or None when it cannot stand for the stack (an unclear version
    check, no version accepted, no certificate seen)."""
    answers, chains = [], set()
    for key, elimination in eliminations.items():
        first = elimination.first
        if first is None or first.kind not in (AnswerKind.ACCEPTED, AnswerKind.REJECTED):
            return None
        answers.append((key, first.summary))
        if first.chain_sha256:
            chains.add(first.chain_sha256)
    if not chains or not any(a.startswith("accepted") for _, a in answers):
        return None
    return Fingerprint(negotiated, tuple(answers), tuple(sorted(chains)))


def leaders(fingerprints: Sequence[tuple[int, Fingerprint | None]]) -> dict[int, int]:
    """follower port -> the first earlier port with the same fingerprint (ports without one lead
    nobody and follow nobody)."""
    first_with: dict[Fingerprint, int] = {}
    follows: dict[int, int] = {}
    for port, print_ in fingerprints:
        if print_ is None:
            continue
        if print_ in first_with:
            follows[port] = first_with[print_]
        else:
            first_with[print_] = port
    return follows


@dataclass(frozen=True)
class Check:
    """One ClientHello a follower must answer as its leader did."""

    group: SuiteGroup
    suites: tuple[CipherSuite, ...]
    expect: str  # the OpenSSL name the leader's server picked; "" = it refused the ClientHello
    refusal: str = ""  # the leader's refusal (its sslyze message), when one is expected

    def holds(self, answer: Answer) -> bool:
        """Did the follower answer the same?"""
        if self.expect:
            return answer.kind is AnswerKind.ACCEPTED and answer.suite == self.expect
        return answer.kind is AnswerKind.REJECTED and answer.detail == self.refusal


def verification_checks(leader: Mapping[str, Elimination]) -> tuple[Check, ...] | None:
    """The checks a follower must pass to adopt the leader's enumeration, or None when it should
    enumerate itself (the leader's enumeration was not clean, or sharing would save little).

    The follower's version checks already got the leader's first pick of every group and its
    refused versions. Per group that accepted suites: the suites the leader's server rejected
    must be refused again (nothing accepted beyond the leader's), and where the server picked in
    an order of its own, the last ClientHello it accepted must get the same pick (its least
    preferred suite, usually its weakest). Where it followed the ClientHello's order (weakest
    first), the version check's pick already is the weakest suite."""
    if not all(e.clean for e in leader.values()):
        return None
    checks: list[Check] = []
    saved = 0
    for elimination in leader.values():
        picks, refusal = elimination.picks, elimination.refusal
        saved += len(picks)
        if len(picks) >= 2 and not elimination.client_order:
            checks.append(Check(elimination.group, picks[-1][0], picks[-1][1].suite))
        if picks and refusal is not None:
            checks.append(Check(elimination.group, refusal[0], "", refusal[1].detail))
    if saved < SHARE_FACTOR * max(1, len(checks)):
        return None
    return tuple(checks)
