"""Offline tests of the lean cipher-suite enumeration: the suite groups, the version check and
elimination against scripted servers, refusals by a closed connection, one-by-one fallback, what
sslyze's connectivity test would have found, and the decision to share one port's enumeration."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import CipherSuiteAcceptedByServer
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite, CipherSuitesRepository
from sslyze.server_connectivity import TlsVersionEnum

from mailaudit.probes.tls_suites import (
    LEGACY,
    MODERN,
    Answer,
    AnswerKind,
    Check,
    Elimination,
    Fingerprint,
    Phase,
    SuiteGroup,
    fingerprint,
    leaders,
    offerable_count,
    probing_result,
    suite_groups,
    verification_checks,
    version_result,
)

ALERT = "TLS alert: handshake failure"
CLOSE = "Server interrupted the TLS handshake"
CHAIN = "c" * 64


def group(version: str, client: str = LEGACY) -> SuiteGroup:
    return next(g for g in suite_groups() if g.version == version and g.client == client)


def names(suites: Sequence[CipherSuite]) -> set[str]:
    return {s.openssl_name for s in suites}


Server = Callable[[SuiteGroup, tuple[CipherSuite, ...]], Answer]


def server(accepts: Sequence[str], order: Sequence[str] | None = None, refusal: str = ALERT) -> Server:
    """A scripted server accepting ``accepts`` (OpenSSL names); it picks in its own ``order`` if
    given (server preference), else the first offered it accepts (the client's order)."""
    def answer(_: SuiteGroup, offered: tuple[CipherSuite, ...]) -> Answer:
        usable = [s.openssl_name for s in offered if s.openssl_name in accepts]
        if not usable:
            return Answer(AnswerKind.REJECTED, refusal)
        pick = next(n for n in order if n in usable) if order else usable[0]
        return Answer(AnswerKind.ACCEPTED, suite=pick, chain_sha256=CHAIN)
    return answer


def enumerate_with(elimination: Elimination, answer: Server, limit: int = 500) -> Elimination:
    """Feed the elimination until it has nothing more to ask."""
    for _ in range(limit):
        offered = elimination.offer()
        if not offered:
            break
        elimination.record(offered, answer(elimination.group, offered))
    return elimination


# --- groups ------------------------------------------------------------------------------------

def test_groups_offer_what_sslyze_tests_one_by_one():
    """Per version, the groups hold exactly the suites sslyze's one-suite scan can offer (the ones it
    does not skip as 'no ciphers available'): 7, 80, 80, 80, 156, 5 — found offline."""
    assert [offerable_count(v) for v in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")] == \
        [7, 80, 80, 80, 156, 5]
    for g in suite_groups():
        repository = CipherSuitesRepository.get_all_cipher_suites(g.tls_version)
        assert set(g.suites) <= repository and len(set(g.suites)) == len(g.suites)


def test_groups_use_the_client_sslyze_uses():
    """SSL 2/3 and TLS 1.0/1.1 with the legacy OpenSSL, TLS 1.3 with the modern one, TLS 1.2 split
    between them as sslyze splits it."""
    clients = {(g.version, g.client) for g in suite_groups()}
    assert clients == {("SSLv2", LEGACY), ("SSLv3", LEGACY), ("TLSv1.0", LEGACY), ("TLSv1.1", LEGACY),
                       ("TLSv1.2", LEGACY), ("TLSv1.2", MODERN), ("TLSv1.3", MODERN)}
    assert "ECDHE-RSA-CHACHA20-POLY1305" in names(group("TLSv1.2", MODERN).suites)
    assert "DES-CBC3-SHA" in names(group("TLSv1.2").suites)


def test_weakest_suites_come_first():
    """The ClientHello lists NULL, anonymous, EXPORT, RC4 and DES suites before static-RSA ones,
    those before forward-secret CBC ones and those before forward-secret AEAD ones, so a server that
    follows the client's order shows its weakest suite at its version check."""
    suites = [s.name for s in group("TLSv1.2").suites]

    def where(*marks: str) -> list[int]:
        return [i for i, n in enumerate(suites) if any(m in n for m in marks)]
    weak = where("NULL", "anon", "EXPORT", "RC4", "_DES_", "3DES")
    static, fs_cbc = where("TLS_RSA_WITH_AES"), where("TLS_ECDHE_RSA_WITH_AES_128_CBC")
    fs_aead = where("TLS_ECDHE_RSA_WITH_AES_128_GCM", "TLS_ECDHE_RSA_WITH_AES_256_GCM")
    assert max(weak) < min(static) and max(static) < min(fs_cbc) and max(fs_cbc) < min(fs_aead)


# --- the version check and elimination -----------------------------------------------------------

ACCEPTED_12 = ["ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256", "AES128-SHA", "NULL-SHA"]


@pytest.mark.parametrize("order", [None, ACCEPTED_12], ids=["client-order", "server-order"])
def test_elimination_finds_every_accepted_suite_with_one_handshake_each(order):
    """Whatever order the server picks in, elimination finds exactly the accepted suites, with one
    ClientHello per accepted suite plus the refusal that ends it; the rest is rejected."""
    elimination = enumerate_with(Elimination(group("TLSv1.2")), server(ACCEPTED_12, order))
    assert elimination.phase is Phase.DONE and elimination.clean
    assert {a.cipher_suite.openssl_name for a in elimination.accepted} == set(ACCEPTED_12)
    assert elimination.handshakes == len(ACCEPTED_12) + 1
    assert len(elimination.rejected) == len(group("TLSv1.2").suites) - len(ACCEPTED_12)
    assert {r.error_message for r in elimination.rejected} == {ALERT}
    assert elimination.client_order is (order is None)


def test_refused_version_costs_one_handshake():
    """A version the server refuses with an alert is decided by its version check alone."""
    elimination = enumerate_with(Elimination(group("TLSv1.0")), server([]))
    assert elimination.handshakes == 1 and not elimination.accepted
    assert len(elimination.rejected) == offerable_count("TLSv1.0")


def test_refusal_by_a_closed_connection_is_asked_twice():
    """A refusal without an alert (the server closed the connection) counts only when the same
    ClientHello is refused again; a connection lost by accident followed by a pick is no refusal."""
    refused = enumerate_with(Elimination(group("SSLv3")), server([], refusal=CLOSE))
    assert refused.handshakes == 2 and refused.repeats == 1 and len(refused.rejected) == offerable_count("SSLv3")

    answers = iter([Answer(AnswerKind.REJECTED, CLOSE)])
    real = server(["AES128-SHA"])
    flaky = enumerate_with(Elimination(group("TLSv1.0")), lambda g, o: next(answers, None) or real(g, o))
    assert [a.cipher_suite.openssl_name for a in flaky.accepted] == ["AES128-SHA"]


def test_corroborated_refusal_needs_no_repeat():
    """Another port with every same answer saw the closed-connection refusal: it stands as is."""
    elimination = Elimination(group("SSLv2"))
    offered = elimination.offer()
    elimination.record(offered, Answer(AnswerKind.REJECTED, CLOSE))
    assert elimination.offer() == offered and not elimination.finished
    elimination.corroborate()
    assert elimination.phase is Phase.DONE and len(elimination.rejected) == offerable_count("SSLv2")


@pytest.mark.parametrize("detail", ["Connection to server timed out during the TLS handshake",
                                    "TLS alert: bad record mac", "the server picked X, which was not offered"])
def test_unclear_answer_is_never_a_refusal(detail):
    """A timeout or an alert that may be the client's own failure sends the rest of the group to
    sslyze's one-suite tests; nothing is taken as rejected."""
    elimination = Elimination(group("TLSv1.2"))
    elimination.record(elimination.offer(), Answer(AnswerKind.UNCLEAR, detail))
    assert elimination.phase is Phase.ONE_BY_ONE and elimination.unclear == detail
    assert not elimination.rejected and elimination.waiting == len(group("TLSv1.2").suites)
    assert not elimination.offer()


def test_one_by_one_results_complete_the_group():
    """sslyze's per-suite answers fill the group; a job's exception makes the version an error."""
    elimination = Elimination(group("TLSv1.3", MODERN))
    elimination.go_one_by_one("timeout")
    suites = list(elimination.remaining)
    elimination.record_single(suites[0], CipherSuiteAcceptedByServer(suites[0], None), None)
    for suite in suites[1:-1]:
        elimination.record_single(suite, None, None)  # not offerable after all: skipped, as sslyze does
    assert not elimination.finished
    elimination.record_single(suites[-1], None, TimeoutError("lost"))
    assert elimination.phase is Phase.FAILED and isinstance(elimination.error, TimeoutError)


def test_failed_connection_makes_the_version_an_error():
    """No TLS answer at all (TCP, STARTTLS) is an error of the scan command, never a refusal."""
    elimination = Elimination(group("TLSv1.1"))
    elimination.record(elimination.offer(), Answer(AnswerKind.FAILED, "Connection to the server timed out",
                                                   error=TimeoutError("x")))
    assert elimination.phase is Phase.FAILED and not elimination.rejected


def test_version_result_is_sslyze_shaped():
    """Both TLS 1.2 groups make one sslyze result, sorted as sslyze sorts it."""
    legacy = enumerate_with(Elimination(group("TLSv1.2")), server(ACCEPTED_12))
    modern = enumerate_with(Elimination(group("TLSv1.2", MODERN)), server(["ECDHE-RSA-CHACHA20-POLY1305"]))
    result = version_result("TLSv1.2", [legacy, modern])
    accepted = [a.cipher_suite.name for a in result.accepted_cipher_suites]
    assert accepted == sorted(accepted, reverse=True) and len(accepted) == 5
    assert len(accepted) + len(result.rejected_cipher_suites) == offerable_count("TLSv1.2")
    assert result.tls_version_used is TlsVersionEnum.TLS_1_2


# --- what sslyze's connectivity test would have found --------------------------------------------

def finished(accepts: dict[str, list[str]]) -> dict[str, Elimination]:
    return {g.key: enumerate_with(Elimination(g), server(accepts.get(g.key, []))) for g in suite_groups()}


def test_probing_result_is_the_highest_version_the_default_client_reaches():
    """TLS 1.3 when accepted; TLS 1.2 only with a suite the modern client offers (a legacy-only
    suite sends sslyze down to TLS 1.1); SSL 2.0 alone or nothing at all is sslyze's error line."""
    top = probing_result(finished({"TLSv1.3 modern": ["TLS_AES_256_GCM_SHA384"], "TLSv1.2 legacy": ["AES128-SHA"]}))
    assert top.highest_tls_version_supported is TlsVersionEnum.TLS_1_3
    assert top.cipher_suite_supported == "TLS_AES_256_GCM_SHA384" and top.supports_ecdh_key_exchange
    legacy_only = probing_result(finished({"TLSv1.2 legacy": ["DES-CBC-SHA"], "TLSv1.1 legacy": ["AES128-SHA"]}))
    assert legacy_only.highest_tls_version_supported is TlsVersionEnum.TLS_1_1
    assert "only supports SSL 2.0" in probing_result(finished({"SSLv2 legacy": ["RC4-MD5"]}))
    assert probing_result(finished({})).startswith("TLS probing failed")


# --- one enumeration per TLS stack ---------------------------------------------------------------

def checks_of(accepts: dict[str, list[str]]) -> dict[str, Elimination]:
    eliminations = {g.key: Elimination(g) for g in suite_groups()}
    for elimination in eliminations.values():
        answer = server(accepts.get(elimination.group.key, []))
        offered = elimination.offer()
        elimination.record(offered, answer(elimination.group, offered))
        elimination.corroborate()
    return eliminations


def test_fingerprint_compares_every_version_check_and_the_certificate():
    """Ports with the same answers and chain have equal fingerprints; a different pick differs; a
    port without a decided version check, an accepted version or a certificate has none."""
    same = {"TLSv1.2 legacy": ACCEPTED_12, "TLSv1.3 modern": ["TLS_AES_256_GCM_SHA384"]}
    a, b = fingerprint("TLSv1.3 X", checks_of(same)), fingerprint("TLSv1.3 X", checks_of(same))
    assert a == b and a is not None and a.handshakes == 1 + len(suite_groups())
    other = fingerprint("TLSv1.3 X", checks_of({**same, "TLSv1.2 legacy": ACCEPTED_12[:-1]}))
    assert other != a
    unclear = checks_of(same)
    unclear["TLSv1.0 legacy"] = Elimination(group("TLSv1.0"))
    unclear["TLSv1.0 legacy"].record(unclear["TLSv1.0 legacy"].offer(), Answer(AnswerKind.UNCLEAR, "timeout"))
    assert fingerprint("TLSv1.3 X", unclear) is None
    assert fingerprint("", checks_of({})) is None


def test_leaders_are_the_first_port_with_each_fingerprint():
    """Ports follow the first earlier port with their fingerprint; ports without one are alone."""
    one, two = Fingerprint("a", (("g", "x"),), ("c",)), Fingerprint("b", (("g", "x"),), ("c",))
    assert leaders([(25, one), (587, one), (143, two), (465, one), (993, None), (110, two)]) == \
        {587: 25, 465: 25, 110: 143}


def test_checks_for_a_client_order_leader_ask_only_for_the_rejected_suites():
    """Where the server followed the ClientHello's order, the version check's pick already is the
    weakest suite: one check per group, the rejected suites refused again."""
    leader = {g.key: enumerate_with(Elimination(g), server(ACCEPTED_12 if g.key == "TLSv1.2 legacy" else []))
              for g in suite_groups()}
    checks = verification_checks(leader)
    assert checks is not None and len(checks) == 1
    (check,) = checks
    assert check.expect == "" and check.refusal == ALERT
    assert not names(check.suites) & set(ACCEPTED_12)
    assert check.holds(Answer(AnswerKind.REJECTED, ALERT))
    assert not check.holds(Answer(AnswerKind.ACCEPTED, suite="DES-CBC3-SHA"))


def test_checks_for_a_server_order_leader_also_replay_its_last_pick():
    """Where the server picked in its own order, the last ClientHello it accepted must get the
    same pick (its least preferred suite) on the follower."""
    leader = {g.key: enumerate_with(Elimination(g), server(ACCEPTED_12 if g.key == "TLSv1.2 legacy" else [],
                                                           ACCEPTED_12))
              for g in suite_groups()}
    checks = verification_checks(leader)
    assert checks is not None and [c.expect for c in checks] == ["NULL-SHA", ""]
    last = checks[0]
    assert last.holds(Answer(AnswerKind.ACCEPTED, suite="NULL-SHA"))
    assert not last.holds(Answer(AnswerKind.REJECTED, ALERT))


def test_no_sharing_when_it_saves_little_or_the_leader_was_unsure():
    """A cheap enumeration is done on every port; an enumeration that went one suite at a time
    (or failed) is never shared."""
    cheap = {g.key: enumerate_with(Elimination(g), server(["AES128-SHA"] if g.key == "TLSv1.2 legacy" else []))
             for g in suite_groups()}
    assert verification_checks(cheap) is None
    rich = {g.key: enumerate_with(Elimination(g), server(ACCEPTED_12 if g.key == "TLSv1.2 legacy" else []))
            for g in suite_groups()}
    rich["TLSv1.3 modern"] = Elimination(group("TLSv1.3", MODERN))
    rich["TLSv1.3 modern"].go_one_by_one("timeout")
    assert verification_checks(rich) is None


def test_check_for_a_refusal_wants_the_same_refusal():
    """A follower that refuses with another reason than the leader did is not the same stack."""
    check = Check(group("TLSv1.0"), group("TLSv1.0").suites, "", ALERT)
    assert not check.holds(Answer(AnswerKind.REJECTED, CLOSE))
