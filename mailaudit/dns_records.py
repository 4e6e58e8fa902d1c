"""Strict parsers of the mail-policy records in DNS: SPF (RFC 7208 §12), DMARC (RFC 7489 §6.4),
MTA-STS (RFC 8461 §3.1-3.2) and TLS-RPT (RFC 8460 §3).

Pure functions, no DNS. Each parser returns what it read and a list of *errors* (the record is
invalid: a receiver would discard it or return permerror) and *warnings* (valid, but worth
saying). Numbers are ASCII digits only (``pct=¹⁰⁰`` is an error, never a ValueError), and a
hostile record of any length is parsed in linear time.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

WSP = " \t"
_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)


def ascii_int(text: str, low: int, high: int, max_digits: int = 10) -> int | None:
    """The integer written in ASCII digits ``text`` when it lies in [low, high], else None."""
    if len(text) > max_digits or not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def is_host_name(text: str) -> bool:
    """An LDH host name (RFC 1123 §2.1), at most 253 octets, with a dot; a trailing dot allowed."""
    name = text[:-1] if text.endswith(".") else text
    labels = name.split(".")
    return (0 < len(name) <= 253 and len(labels) > 1 and all(_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit())


def _printable_ascii_problem(record: str) -> str | None:
    bad = next((c for c in record if not (" " <= c <= "~" or c == "\t")), None)
    return None if bad is None else f"character {bad!r} (U+{ord(bad):04X}) is not printable US-ASCII"


# --- SPF (RFC 7208) ---------------------------------------------------------------------------

SPF_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
SPF_DNS_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")  # §4.6.4: these cost a lookup
_MACRO_TOKEN = re.compile(r"%\{([A-Za-z])([0-9]*)([rR]?)([-.+,/_=]*)\}|%[%_-]|[\x21-\x24\x26-\x7e]", re.ASCII)
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)", re.ASCII | re.DOTALL)
_MECHANISM_NAME = re.compile(r"[A-Za-z0-9]*", re.ASCII)
_QNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IP4 = re.compile(rf"{_QNUM}\.{_QNUM}\.{_QNUM}\.{_QNUM}", re.ASCII)
_DUAL_CIDR = re.compile(r"(?:/(0|[1-9][0-9]?))?(?://(0|[1-9][0-9]{0,2}))?\Z", re.ASCII)
_TOPLABEL = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9]", re.ASCII)
MACRO_LETTERS = "slodiphcrtv"
EXP_ONLY_MACROS = "crt"  # RFC 7208 §7.2: only in exp= text


@dataclass(frozen=True)
class SpfDirective:
    """One term of an SPF record as written: a mechanism (with its qualifier) or a modifier."""

    text: str
    name: str  # mechanism or modifier name, lower-case: "include", "a", "redirect", "exp", ...
    qualifier: str = ""  # "+", "-", "~" or "?" for mechanisms ("+" when omitted); "" for modifiers
    argument: str = ""  # the domain-spec or network, without cidr lengths
    modifier: bool = False

    @property
    def costs_lookup(self) -> bool:
        """RFC 7208 §4.6.4: include, a, mx, ptr, exists and redirect count toward the limit of 10."""
        return self.name in SPF_DNS_TERMS

    @property
    def has_macro(self) -> bool:
        """The argument expands per message (``%{i}``...), so it cannot be resolved in advance."""
        return "%" in self.argument


@dataclass(frozen=True)
class SpfSyntax:
    """An SPF record parsed by the RFC 7208 grammar: its directives, errors and warnings."""

    record: str
    directives: tuple[SpfDirective, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """No syntax error (RFC 7208 §4.6: any syntax error is a permerror)."""
        return not self.errors

    @property
    def all_term(self) -> str | None:
        """``-all``, ``~all``, ``?all`` or ``+all`` (the first all), None when there is none."""
        return next((f"{d.qualifier}all" for d in self.directives if d.name == "all" and not d.modifier), None)

    def modifier(self, name: str) -> str | None:
        """The argument of ``redirect``/``exp``, None when absent."""
        return next((d.argument for d in self.directives if d.modifier and d.name == name), None)


def is_spf(text: str) -> bool:
    """RFC 7208 §4.5: a record is SPF if it is exactly ``v=spf1`` or starts with ``v=spf1 ``."""
    lowered = text[:7].lower()
    return lowered == "v=spf1" or lowered == "v=spf1 "


def parse_spf(record: str) -> SpfSyntax:
    """Parse one SPF record (RFC 7208 §4.6, §12); never raises."""
    if not is_spf(record):
        return SpfSyntax(record, (), ("does not start with 'v=spf1' (RFC 7208 §4.5)",))
    bad = _printable_ascii_problem(record)
    errors: list[str] = [f"{bad} (RFC 7208 §3: US-ASCII)"] if bad else []
    if "\t" in record:
        errors.append("terms separated by a tab (RFC 7208 §12: only spaces separate terms)")
    directives, warnings = [], []
    for token in record[6:].replace("\t", " ").split(" "):
        if not token:
            continue
        directive, problem = _spf_directive(token)
        directives.append(directive)
        if problem:
            errors.append(f"'{_short(token)}': {problem}")
    for name in ("redirect", "exp"):
        count = sum(1 for d in directives if d.modifier and d.name == name)
        if count > 1:
            errors.append(f"{count} {name}= modifiers (RFC 7208 §6: at most one)")
    all_index = next((i for i, d in enumerate(directives) if d.name == "all" and not d.modifier), None)
    if all_index is not None:
        if any(not d.modifier for d in directives[all_index + 1:]):
            warnings.append("mechanisms after 'all' are never evaluated (RFC 7208 §5.1)")
        if any(d.modifier and d.name == "redirect" for d in directives):
            warnings.append("redirect= is ignored because the record has an 'all' (RFC 7208 §6.1)")
    return SpfSyntax(record, tuple(directives), tuple(errors), tuple(warnings))


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _spf_directive(token: str) -> tuple[SpfDirective, str | None]:
    """One term: a modifier (``name=value``) or a qualified mechanism; the problem, if any."""
    modifier = _MODIFIER.fullmatch(token)
    if modifier:
        name, value = modifier.group(1).lower(), modifier.group(2)
        directive = SpfDirective(token, name, argument=value, modifier=True)
        if name in ("redirect", "exp"):
            return directive, domain_spec_problem(value, exp=False)
        return directive, macro_string_problem(value, exp=False)
    qualifier = token[0] if token[0] in "+-~?" else ""
    body = token[len(qualifier):]
    name = _MECHANISM_NAME.match(body).group(0).lower()
    rest = body[len(name):]
    directive = SpfDirective(token, name, qualifier or "+")
    if name not in SPF_MECHANISMS or (rest and rest[0] not in ":/"):
        return directive, "unknown mechanism or malformed term (RFC 7208 §5)"
    argument, problem = _mechanism_argument(name, rest)
    return SpfDirective(token, name, qualifier or "+", argument), problem


def _mechanism_argument(name: str, rest: str) -> tuple[str, str | None]:
    """The argument of a mechanism and the grammar problem of ``rest`` (``:arg/cidr``), if any."""
    if name == "all":
        return "", "'all' takes no argument" if rest else None
    if name in ("ip4", "ip6"):
        return _ip_argument(name, rest)
    if name in ("include", "exists") and not rest.startswith(":"):
        return "", f"{name} needs ':domain' (RFC 7208 §5.2, §5.7)"
    cidr = _DUAL_CIDR.search(rest) if name in ("a", "mx") else None
    if cidr and cidr.group(0):
        problem = _cidr_problem(cidr.group(1), cidr.group(2))
        if problem:
            return "", problem
        rest = rest[:cidr.start()]
    if not rest:
        return "", None
    if not rest.startswith(":"):
        return "", "malformed term (RFC 7208 §5)"
    return rest[1:], domain_spec_problem(rest[1:], exp=False)


def _cidr_problem(ip4: str | None, ip6: str | None) -> str | None:
    if ip4 is not None and ascii_int(ip4, 0, 32) is None:
        return f"IPv4 prefix length /{ip4} is out of range 0-32"
    if ip6 is not None and ascii_int(ip6, 0, 128) is None:
        return f"IPv6 prefix length //{ip6} is out of range 0-128"
    return None


def _ip_argument(name: str, rest: str) -> tuple[str, str | None]:
    if not rest.startswith(":"):
        return "", f"{name} needs ':network' (RFC 7208 §5.6)"
    network, slash, length = rest[1:].partition("/")
    high = 32 if name == "ip4" else 128
    if slash and ascii_int(length, 0, high, 3) is None:
        return network, f"prefix length /{_short(length, 20)} is not 0-{high} in ASCII digits"
    if name == "ip4" and not _IP4.fullmatch(network):
        return network, f"'{_short(network, 40)}' is not a dotted-quad IPv4 address (RFC 7208 §5.6)"
    if name == "ip6":
        if not re.fullmatch(r"[0-9A-Fa-f:.]+", network, re.ASCII):
            return network, f"'{_short(network, 40)}' is not an IPv6 address (RFC 4291 §2.2)"
        try:
            ipaddress.IPv6Address(network)
        except ValueError:
            return network, f"'{_short(network, 40)}' is not an IPv6 address (RFC 4291 §2.2)"
    return network, None


def _macro_tokens(text: str) -> list[re.Match[str]] | None:
    """The macro-expand and macro-literal tokens of ``text``, None if a character fits neither."""
    tokens, position = [], 0
    while position < len(text):
        match = _MACRO_TOKEN.match(text, position)
        if match is None:
            return None
        tokens.append(match)
        position = match.end()
    return tokens


def macro_string_problem(text: str, exp: bool) -> str | None:
    """RFC 7208 §7.1 macro-string: printable ASCII except a bare ``%``; known macro letters."""
    tokens = _macro_tokens(text)
    if tokens is None:
        return "invalid character or macro (RFC 7208 §7.1: '%' starts %{x}, %%, %_ or %-)"
    for token in tokens:
        letter = token.group(1)
        if letter is None:
            continue
        if letter.lower() not in MACRO_LETTERS:
            return f"unknown macro letter %{{{letter}}} (RFC 7208 §7.2)"
        if letter.lower() in EXP_ONLY_MACROS and not exp:
            return f"macro %{{{letter}}} is allowed only in exp= text (RFC 7208 §7.2)"
    return None


def domain_spec_problem(spec: str, exp: bool) -> str | None:
    """RFC 7208 §7.1 domain-spec: a macro-string ending in ``.toplabel`` or a macro."""
    if not spec:
        return "empty domain-spec"
    problem = macro_string_problem(spec, exp)
    if problem:
        return problem
    tokens = _macro_tokens(spec) or []
    if len(tokens[-1].group(0)) > 1:  # ends in a macro-expand
        return None
    literal_tail = "".join(t.group(0) for t in reversed(_tail_literals(tokens)))
    tail = literal_tail[:-1] if literal_tail.endswith(".") else literal_tail
    _, dot, label = tail.rpartition(".")
    if not dot or len(label) > 63 or not _TOPLABEL.fullmatch(label):
        return f"'{_short(spec, 60)}' does not end in a valid top label (RFC 7208 §7.1 domain-end)"
    return None


def _tail_literals(tokens: list[re.Match[str]]) -> list[re.Match[str]]:
    """The single-character literal tokens at the end, last first."""
    tail = []
    for token in reversed(tokens):
        if len(token.group(0)) > 1 or token.group(0) == "%":
            break
        tail.append(token)
    return tail


# --- DMARC (RFC 7489) -------------------------------------------------------------------------

DMARC_POLICIES = ("none", "quarantine", "reject")
DMARC_KNOWN_TAGS = ("v", "p", "sp", "rua", "ruf", "adkim", "aspf", "ri", "fo", "rf", "pct")
_DMARC_CANDIDATE = re.compile(r"[ \t]*v[ \t]*=[ \t]*dmarc", re.IGNORECASE | re.ASCII)
_DMARC_VERSION = re.compile(r"v[ \t]*=[ \t]*DMARC1", re.ASCII)  # "v" any case, DMARC1 exact (§6.4)
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*", re.ASCII)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+;=%]+", re.ASCII)
_SIZE_LIMIT = re.compile(r"[0-9]+[kmgtKMGT]?", re.ASCII)
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$&'*+/=?^_`{|}~.-]+|\"[^\"]*\"", re.ASCII)
_KEYWORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", re.ASCII)


@dataclass(frozen=True)
class DmarcUri:
    """One rua/ruf URI as written (RFC 7489 §6.2), with the mailto address when it is one."""

    uri: str
    address: str = ""  # "" unless a valid mailto: URI
    error: str = ""


@dataclass(frozen=True)
class DmarcSyntax:
    """A DMARC record parsed by the RFC 7489 grammar: tags as written, errors and warnings."""

    record: str
    tags: tuple[tuple[str, str], ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    rua: tuple[DmarcUri, ...] = ()

    @property
    def valid(self) -> bool:
        """No grammar error."""
        return not self.errors

    def tag(self, name: str) -> str | None:
        """A tag's value as written (first occurrence), None when absent."""
        return next((v for k, v in self.tags if k == name), None)

    @property
    def policy(self) -> str | None:
        """``p`` lower-cased when valid, else None."""
        value = (self.tag("p") or "").lower()
        return value if value in DMARC_POLICIES else None

    @property
    def subdomain_policy(self) -> str | None:
        """``sp`` lower-cased, defaulting to ``p`` (RFC 7489 §6.3)."""
        value = (self.tag("sp") or "").lower()
        return value if value in DMARC_POLICIES else self.policy if self.tag("sp") is None else None

    @property
    def pct(self) -> int | None:
        """``pct`` (default 100), None when it is not 0-100 in ASCII digits."""
        text = self.tag("pct")
        return 100 if text is None else ascii_int(text, 0, 100, 3)


def is_dmarc_candidate(text: str) -> bool:
    """A TXT record that means to be DMARC (``v=DMARC...`` in any case): checked strictly after."""
    return bool(_DMARC_CANDIDATE.match(text))


def starts_with_dmarc1(text: str) -> bool:
    """RFC 7489 §7.1: an authorization record for an external destination starts with ``v=DMARC1``."""
    return bool(re.match(r"v[ \t]*=[ \t]*DMARC1[ \t]*(?:;|\Z)", text, re.ASCII))


def parse_dmarc(record: str) -> DmarcSyntax:
    """Parse one DMARC record (RFC 7489 §6.3-6.4); never raises."""
    bad = _printable_ascii_problem(record)
    parts = record.split(";")
    if parts and not parts[-1].strip(WSP):
        parts = parts[:-1]  # one trailing separator is allowed
    errors = [f"{bad} (RFC 7489 §6.4)"] if bad else []
    if not parts or not _DMARC_VERSION.fullmatch(parts[0].strip(WSP)):
        errors.append("does not start with 'v=DMARC1' (RFC 7489 §6.4, case-sensitive value)")
    tags, warnings = [], []
    for index, part in enumerate(parts[1:], start=2):
        name, sep, value = part.strip(WSP).partition("=")
        name, value = name.strip(WSP), value.strip(WSP)
        if not sep or not _TAG_NAME.fullmatch(name):
            errors.append(f"component {index} '{_short(part.strip(WSP), 40)}' is not tag=value (RFC 7489 §6.4)")
            continue
        tags.append((name.lower(), value))
    tags.insert(0, ("v", "DMARC1"))
    errors += _dmarc_tag_problems(tags, warnings)
    rua = tuple(parse_dmarc_uri(u) for u in _uri_list(next((v for k, v in tags if k == "rua"), "")))
    errors += [f"rua '{_short(u.uri, 60)}': {u.error}" for u in rua if u.error]
    ruf = [parse_dmarc_uri(u) for u in _uri_list(next((v for k, v in tags if k == "ruf"), ""))]
    errors += [f"ruf '{_short(u.uri, 60)}': {u.error}" for u in ruf if u.error]
    return DmarcSyntax(record, tuple(tags), tuple(errors), tuple(warnings), rua)


def _dmarc_tag_problems(tags: list[tuple[str, str]], warnings: list[str]) -> list[str]:
    names = [k for k, _ in tags]
    errors = [f"tag {n}= appears {names.count(n)} times" for n in dict.fromkeys(names)
              if n in DMARC_KNOWN_TAGS and names.count(n) > 1]
    if "p" not in names:
        errors.append("no p= tag (RFC 7489 §6.3: required in a policy record)")
    elif names[1] != "p":  # receivers apply the record anyway; DMARCbis drops the order
        warnings.append("p= is not the tag right after v= (RFC 7489 §6.4 orders it so; receivers and "
                        "DMARCbis accept any order)")
    for name, value in tags[1:]:
        if name not in DMARC_KNOWN_TAGS:
            warnings.append(f"unknown tag {name}= is ignored (RFC 7489 §6.3)")
            continue
        problem = _DMARC_VALUE_CHECKS.get(name, lambda v: None)(value)
        if problem:
            errors.append(f"{name}={_short(value, 40)}: {problem}")
    return errors


def _policy_value(value: str) -> str | None:
    return None if value.lower() in DMARC_POLICIES else "must be none, quarantine or reject"


def _alignment_value(value: str) -> str | None:
    return None if value.lower() in ("r", "s") else "must be r or s"


def _fo_value(value: str) -> str | None:
    options = [o.strip(WSP) for o in value.split(":")]
    return None if all(o in ("0", "1", "d", "s", "D", "S") for o in options) else "must be 0, 1, d or s, ':'-separated"


def _rf_value(value: str) -> str | None:
    options = [o.strip(WSP) for o in value.split(":")]
    return None if all(_KEYWORD.fullmatch(o) for o in options) else "must be ':'-separated keywords"


def _pct_value(value: str) -> str | None:
    return None if ascii_int(value, 0, 100, 3) is not None else "must be 0-100 in ASCII digits (RFC 7489 §6.3)"


def _ri_value(value: str) -> str | None:
    return None if ascii_int(value, 0, 2**32 - 1) is not None else "must be seconds in ASCII digits"


def _uri_list_value(value: str) -> str | None:
    return None if _uri_list(value) else "must list at least one URI"


_DMARC_VALUE_CHECKS = {"p": _policy_value, "sp": _policy_value, "adkim": _alignment_value,
                       "aspf": _alignment_value, "fo": _fo_value, "rf": _rf_value, "pct": _pct_value,
                       "ri": _ri_value, "rua": _uri_list_value, "ruf": _uri_list_value}


def _uri_list(value: str) -> list[str]:
    return [u.strip(WSP) for u in value.split(",")] if value.strip(WSP) else []


def parse_dmarc_uri(text: str) -> DmarcUri:
    """``mailto:addr[!size]`` and other URIs of RFC 7489 §6.4 ``dmarc-uri``."""
    uri, bang, size = text.partition("!")
    if bang and not _SIZE_LIMIT.fullmatch(size):
        return DmarcUri(text, error="size limit after '!' must be ASCII digits with k, m, g or t")
    if not _URI.fullmatch(uri):
        return DmarcUri(text, error="not a URI (RFC 3986)")
    if uri[:7].lower() != "mailto:":
        return DmarcUri(text)
    address = uri[7:]
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL_PART.fullmatch(local) or not is_host_name(domain):
        return DmarcUri(text, error="not a mailto: address with a valid domain (RFC 6068)")
    return DmarcUri(text, address)


# --- MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) -----------------------------------------------

_STS_ID = re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII)
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", re.ASCII)
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+", re.ASCII)
STS_MODES = ("enforce", "testing", "none")
STS_MAX_AGE = 31557600  # RFC 8461 §3.2: at most one year


def _tagged_fields(record: str, version: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``v=...; name=value; ...`` as in RFC 8461 §3.1 / RFC 8460 §3: fields and errors."""
    bad = _printable_ascii_problem(record)
    errors = [bad] if bad else []
    parts = record.split(";")
    if parts and not parts[-1].strip(WSP):
        parts = parts[:-1]
    if not parts or parts[0].strip(WSP) != version:
        errors.append(f"does not start with '{version}' (case-sensitive)")
    fields = []
    for part in parts[1:]:
        name, sep, value = part.strip(WSP).partition("=")
        if not sep or not _EXT_NAME.fullmatch(name) or not value:
            errors.append(f"'{_short(part.strip(WSP), 40)}' is not name=value")
            continue
        fields.append((name, value))
    return fields, errors


def _extension_errors(fields: list[tuple[str, str]], known: tuple[str, ...]) -> list[str]:
    """Extension fields: their values are printable ASCII without ';', '=' or spaces."""
    return [f"{name}={_short(value, 40)}: not a valid extension value" for name, value in fields
            if name not in known and not _EXT_VALUE.fullmatch(value)]


def mta_sts_record_errors(record: str) -> list[str]:
    """RFC 8461 §3.1: ``v=STSv1; id=<1-32 letters/digits>`` (extensions allowed)."""
    fields, errors = _tagged_fields(record, "v=STSv1")
    errors += _extension_errors(fields, ("id",))
    ids = [v for k, v in fields if k == "id"]
    if len(ids) != 1:
        errors.append(f"{len(ids)} id= fields (exactly one required)")
    elif not _STS_ID.fullmatch(ids[0]):
        errors.append(f"id={_short(ids[0], 40)} is not 1-32 letters and digits")
    return errors


@dataclass(frozen=True)
class MtaStsPolicy:
    """An MTA-STS policy file (RFC 8461 §3.2) as read: fields and errors."""

    mode: str | None
    max_age: int | None
    mx: tuple[str, ...]
    errors: tuple[str, ...]


def parse_mta_sts_policy(body: str) -> MtaStsPolicy:
    """``key: value`` lines (CRLF or LF); version STSv1, mode, max_age and (unless mode none) mx."""
    values: dict[str, list[str]] = {}
    errors = []
    bad = _printable_ascii_problem(body.replace("\r\n", "\n").replace("\n", " "))
    if bad:
        errors.append(bad)
    for number, line in enumerate(body.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip(WSP):
            continue
        key, colon, value = line.partition(":")
        if not colon or not _EXT_NAME.fullmatch(key):
            errors.append(f"line {number}: not 'key: value'")
            continue
        values.setdefault(key, []).append(value.strip(WSP))
    errors += _sts_policy_problems(values)
    mode = (values.get("mode") or [None])[0]
    max_age = ascii_int((values.get("max_age") or [""])[0], 0, STS_MAX_AGE)
    return MtaStsPolicy(mode if mode in STS_MODES else None, max_age, tuple(values.get("mx", [])), tuple(errors))


def _sts_policy_problems(values: dict[str, list[str]]) -> list[str]:
    errors = [f"{key} appears {len(v)} times" for key, v in values.items()
              if key in ("version", "mode", "max_age") and len(v) > 1]
    if values.get("version", [""])[0] != "STSv1":
        errors.append("version must be STSv1")
    mode = values.get("mode", [""])[0]
    if mode not in STS_MODES:
        errors.append(f"mode {mode!r} is not enforce, testing or none" if mode else "no mode")
    if ascii_int(values.get("max_age", [""])[0], 0, STS_MAX_AGE) is None:
        errors.append(f"max_age must be 0-{STS_MAX_AGE} seconds in ASCII digits")
    for pattern in values.get("mx", []):
        if not is_host_name(pattern[2:] if pattern.startswith("*.") else pattern):
            errors.append(f"mx {_short(pattern, 60)!r} is not a host name or *.domain pattern")
    if mode in ("enforce", "testing") and not values.get("mx"):
        errors.append(f"mode {mode} needs at least one mx line")
    return errors


def tlsrpt_record(record: str) -> tuple[tuple[str, ...], list[str]]:
    """RFC 8460 §3: ``v=TLSRPTv1; rua=<mailto: or https: URIs>``: the rua URIs and the errors."""
    fields, errors = _tagged_fields(record, "v=TLSRPTv1")
    errors += _extension_errors(fields, ("rua",))
    rua = [v for k, v in fields if k == "rua"]
    if len(rua) != 1:
        errors.append(f"{len(rua)} rua= fields (exactly one required)")
        return (), errors
    uris = tuple(u.strip(WSP) for u in rua[0].split(","))
    for uri in uris:
        scheme = uri.split(":", 1)[0].lower()
        if scheme not in ("mailto", "https") or not _URI.fullmatch(uri):
            errors.append(f"rua {_short(uri, 60)!r} is not a mailto: or https: URI")
        elif scheme == "mailto" and parse_dmarc_uri(uri).error:
            errors.append(f"rua {_short(uri, 60)!r} is not a valid mailto: address")
    return uris, errors
