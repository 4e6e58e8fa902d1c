"""Removing secrets from anything that may reach a report, a log or a transcript.

``redact(text)`` removes two kinds of things:

* **Every secret the suite knows**, in every encoding it sends or a server may echo back: the
  values of MAILAUDIT_SMTP_PASSWORD and MAILAUDIT_API_PASSWORD, and every value given to
  :func:`register_secret` (the API client registers each token it receives; the configuration
  registers the passwords with their user names). The encodings: the literal text; its Python
  ``repr`` and JSON escapes (quotes, backslashes, ``\\n``, ``\\uXXXX``), also one inside the other;
  HTML escaping; URL encoding (``quote``, ``quote_plus``, either hex case); base64 of the bare
  value (AUTH LOGIN's password line), of the AUTH PLAIN arguments ``\\0user\\0password`` and
  ``user\\0user\\0password``, of HTTP Basic's ``user:password`` and of AUTH LOGIN's user line; and
  base64 of the secret inside any longer base64 text (its three alignments).
* **Credential-shaped text**, whoever's it is: the argument of a client ``AUTH`` line and the
  base64 lines of an AUTH dialogue in a transcript, ``Authorization``/``Cookie`` header values,
  ``Bearer`` material, JSON or ``repr`` fields named ``*token``/``*password``/``*secret``,
  ``password=`` style form fields, and JWTs (``eyJ...``).

Truncated echoes. A server may echo only the first N characters of what it got. Every base64 form
is therefore also removed when only a *prefix* of it appears, from a length that depends on
where the secret's bits start:

* AUTH PLAIN / Basic with a known user: base64 character *i* carries bits ``6i..6i+5``; the
  characters before the first one that carries a bit of the password encode only
  ``\\0user\\0``, which is not secret. Any prefix reaching that first character is removed, so
  not one bit of the password survives; and any prefix of 16 characters or more is removed even
  if it holds only the user part (96 bits: it never matches by chance, and it marks an echo).
* Base64 of the bare secret (no user part in front): prefixes of 4 characters or more are
  removed. A 4-character base64 run matches unrelated text with probability 2^-24 per
  position; 3 characters (2^-18: about 19 chance matches in 5 MB of base64-like text, such as
  certificates) would start eating evidence. What can survive is an echo of at most 3
  characters: 18 bits, 2 bytes of the secret.
* Base64 of the secret at an unknown offset inside longer base64 (user unknown): runs of 6
  characters or more (2^-36 per position: no chance match in practice). An echo cut shorter
  can keep at most 5 such characters plus the one shared with the bytes before the secret
  (at most 34 bits); this is the fallback when no known user anchors the match.
* The literal secret: its first 16 characters, when it is longer, are removed as well (a server
  quoting a token cut short).

A secret shorter than 4 characters is removed only in its base64 forms: removing every
occurrence of ``ab`` would destroy the evidence without protecting anything.

Speed: the forms are built once per set of secrets (cached). A call is one ``str.find`` pass per
distinct head (one trie-shaped regex instead when there are many), plus the credential patterns,
each run only when a keyword it needs is in the text. Measured on transcript-like text: about
50 ms per MB with the lab's two credentials and 20 tokens, about 130 ms per MB with 220 tokens
(selftests/unit/test_redact_unit.py bounds a 5 MB run).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"

# Environment variables whose values are secrets wherever they appear, and their users.
SECRET_ENV_VARS = {"MAILAUDIT_SMTP_PASSWORD": "MAILAUDIT_SMTP_USER", "MAILAUDIT_API_PASSWORD": "MAILAUDIT_API_USER"}

MIN_SECRET_CHARS = 4  # shorter literal secrets are left alone (see the module docstring)
B64_MIN_PREFIX = 4  # shortest removed prefix of base64 that starts with secret bits
B64_ANCHOR_CAP = 16  # a prefix this long of an AUTH argument is removed even if it holds only the user
UNALIGNED_MIN_PREFIX = 6  # shortest removed run of base64 of the secret at an unknown offset
LITERAL_PREFIX = 16  # a literal secret's first characters removed when it is cut short

_lock = threading.Lock()
_registered: dict[tuple[str, str | None], None] = {}  # insertion-ordered set of (secret, user)
_cache: tuple[object, _Matcher] | None = None


def register_secret(value: str, user: str | None = None) -> None:
    """Make ``redact`` remove ``value`` in every encoding from now on (thread-safe).

    ``user``, when the secret is that user's password, adds the AUTH PLAIN, AUTH LOGIN and HTTP
    Basic forms with their exact prefixes. Empty values are ignored."""
    if not value:
        return
    with _lock:
        _registered.setdefault((value, user or None), None)


def redact(text: str) -> str:
    """Return text with every known secret (all encodings) and credential-shaped text removed."""
    if not text:
        return text
    text = _matcher().cut(text)
    lowered = text.lower()
    for keywords, pattern, replace in _PATTERNS:
        if any(word in lowered for word in keywords):  # a cheap test first: most text has none
            text = pattern.sub(replace, text)
    return text


# --- the known secrets --------------------------------------------------------------------------

def _matcher() -> _Matcher:
    """The matcher for the current secrets (environment + registered), rebuilt when they change."""
    global _cache
    env = tuple((os.environ.get(var), os.environ.get(user_var)) for var, user_var in SECRET_ENV_VARS.items())
    with _lock:
        key = (env, len(_registered))
        if _cache is None or _cache[0] != key:
            pairs = [(secret, user) for secret, user in env if secret] + list(_registered)
            _cache = (key, _Matcher(needle for pair in pairs for needle in _needles(*pair)))
        return _cache[1]


HEAD_CHARS = 16  # needles are found by their first (at most) 16 characters, then extended
FIND_MAX_HEADS = 150  # up to this many heads one str.find pass each is fastest; beyond, one regex


class _Matcher:
    """Finds every needle, or a long enough prefix of it, and cuts the spans out.

    Needles are grouped by their head (their first ``min(min_len, HEAD_CHARS)`` characters). A
    head is found with ``str.find`` (few heads) or one trie-shaped regex (many: the API client
    registers tokens per domain); each hit is extended as far as a needle of that group agrees
    with the text, and kept if that reaches the needle's shortest removed length."""

    def __init__(self, needles: Iterable[tuple[str, int]]) -> None:
        groups: dict[str, dict[str, int]] = {}
        for full, min_len in needles:
            fulls = groups.setdefault(full[:min(min_len, HEAD_CHARS)], {})
            fulls[full] = min(min_len, fulls.get(full, min_len))
        self._groups = {head: tuple(fulls.items()) for head, fulls in groups.items()}
        self._lengths = sorted({len(head) for head in groups}, reverse=True)
        self._trie = _trie_regex(groups) if len(groups) > FIND_MAX_HEADS else None

    def cut(self, text: str) -> str:
        """``text`` with every match replaced by REDACTED (overlapping matches merged)."""
        spans = []
        for start, fulls in self._hits(text):
            reached = [(_common_prefix(text, start, full), min_len) for full, min_len in fulls]
            if any(length >= min_len for length, min_len in reached):
                spans.append((start, start + max(length for length, _ in reached)))
        return _replace_spans(text, spans) if spans else text

    def _hits(self, text: str) -> Iterator[tuple[int, tuple[tuple[str, int], ...]]]:
        """(position, needles) wherever a head occurs."""
        if self._trie is None:
            for head, fulls in self._groups.items():
                start = text.find(head)
                while start != -1:
                    yield start, fulls
                    start = text.find(head, start + 1)
            return
        for match in self._trie.finditer(text):
            start = match.start()
            for length in self._lengths:
                fulls = self._groups.get(text[start:start + length])
                if fulls:
                    yield start, fulls


def _trie_regex(heads: Iterable[str]) -> re.Pattern[str]:
    """A zero-width regex matching where any head starts, shaped as a trie (one pass, shared
    prefixes tried once)."""
    trie: dict[str, dict] = {}
    for head in heads:
        node = trie
        for char in head:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return re.compile(f"(?={build(trie)})")


def _common_prefix(text: str, start: int, full: str) -> int:
    chunk = text[start:start + len(full)]
    if chunk == full:
        return len(full)
    return next((i for i, (a, b) in enumerate(zip(chunk, full, strict=False)) if a != b), len(chunk))


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    pieces, pos = [], 0
    current_start, current_end = -1, -1
    for start, end in sorted(spans):
        if start <= current_end:
            current_end = max(current_end, end)
            continue
        if current_end >= 0:
            pieces += [text[pos:current_start], REDACTED]
            pos = current_end
        current_start, current_end = start, end
    pieces += [text[pos:current_start], REDACTED, text[current_end:]]
    return "".join(pieces)


@functools.lru_cache(maxsize=4096)
def _needles(secret: str, user: str | None) -> tuple[tuple[str, int], ...]:
    """(form, shortest removed prefix) for every encoding of one secret."""
    needles: list[tuple[str, int]] = []
    if len(secret) >= MIN_SECRET_CHARS:
        needles += [(form, len(form)) for form in _text_forms(secret) - {secret}]
        needles.append((secret, min(len(secret), LITERAL_PREFIX)))
    raw = secret.encode("utf-8", "surrogatepass")
    bare = base64.b64encode(raw).decode("ascii")
    needles.append((bare, min(len(bare), B64_MIN_PREFIX)))
    for offset in (1, 2):
        middle = _aligned(raw, offset)
        if len(middle) >= UNALIGNED_MIN_PREFIX:
            needles.append((middle, UNALIGNED_MIN_PREFIX))
    if user:
        needles += _user_needles(raw, user.encode("utf-8", "surrogatepass"))
    return tuple(needles)


def _user_needles(raw: bytes, user: bytes) -> list[tuple[str, int]]:
    """AUTH PLAIN (both forms), HTTP Basic and the AUTH LOGIN user line, with exact prefixes."""
    needles = []
    for lead in (b"\0" + user + b"\0", user + b"\0" + user + b"\0", user + b":"):
        encoded = base64.b64encode(lead + raw).decode("ascii")
        first_secret_char = 8 * len(lead) // 6
        shortest = max(B64_MIN_PREFIX, min(first_secret_char + 1, B64_ANCHOR_CAP))
        needles.append((encoded, min(len(encoded), shortest)))
    login_user = base64.b64encode(user).decode("ascii")
    needles.append((login_user, len(login_user)))
    return needles


def _aligned(raw: bytes, offset: int) -> str:
    """The base64 characters that depend only on ``raw`` when it starts ``offset`` bytes into
    a longer base64-encoded text (``offset`` 1 or 2; 0 is the bare encoding)."""
    encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
    first = -(-8 * offset // 6)  # ceil: the first character with no bit of the padding
    last = 8 * (offset + len(raw)) // 6  # characters after this one hold bits past the secret
    return encoded[first:last]


def _text_forms(secret: str) -> set[str]:
    """The literal secret and its escapes, one and two levels deep (repr of a JSON body...)."""
    first = _escapes(secret)
    forms = set(first)
    for form in first:
        forms |= _escapes(form)
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


def _escapes(text: str) -> set[str]:
    core = text.encode("unicode_escape").decode("ascii")
    as_json = json.dumps(text)[1:-1]
    forms = {
        text, repr(text)[1:-1], core, core.replace("'", "\\'"), core.replace('"', '\\"'),
        as_json, json.dumps(text, ensure_ascii=False)[1:-1], as_json.replace("/", "\\/"),
        html.escape(text), html.escape(text, quote=False),
        quote(text, safe=""), quote(text), quote_plus(text), quote_plus(text, safe="/"),
    }
    return forms | {re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), form) for form in forms if "%" in form}


# --- credential-shaped text ---------------------------------------------------------------------

def _keep_quotes(match: re.Match[str]) -> str:
    """Keep the name (group 1) and the value's quotes; drop what is between them."""
    value = match.group(2)
    quote_char = value[0] if value[:1] in ("'", '"') and len(value) >= 2 and value[-1] == value[0] else ""
    return f"{match.group(1)}{quote_char}{REDACTED}{quote_char}"


_QUOTED = r"""("(?:[^"\\\r\n]|\\.)*"|'(?:[^'\\\r\n]|\\.)*'"""
_SECRET_WORDS = ("token", "passw", "pwd", "secret", "twofactorcode")
_PATTERNS = (  # (lower-case words one of which the text must hold, pattern, replacement)
    # A client AUTH line with an initial response, and the base64 lines of an AUTH dialogue.
    (("c: ",), re.compile(r"(?im)^(C: AUTH \S+) (?!\[redacted\]\r?$)\S+(?=\r?$)"), r"\1 " + REDACTED),
    (("c: ",), re.compile(r"(?im)^(C: )(?!AUTH|MAIL|RCPT|EHLO|HELO|LHLO|RSET|QUIT|STARTTLS|VRFY|EXPN|NOOP|HELP)"
                          r"[A-Za-z0-9+/=]{4,}(?=\r?$)"), r"\1" + REDACTED),
    # Authorization / Cookie header values (a header line, a JSON or repr'd dict).
    (("authorization", "cookie"),
     re.compile(r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*|\b(?:set-)?cookie[\"']?\s*[:=]\s*)"
                + _QUOTED + r"|[^\r\n]*)"), _keep_quotes),
    # Bearer material wherever it stands.
    (("bearer",), re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + REDACTED),
    # JSON / repr fields holding a token, password or secret.
    (_SECRET_WORDS, re.compile(r"(?i)([\"'](?:[a-z0-9_-]*(?:token|password|passwd|secret)|twofactorcode)[\"']\s*:\s*)"
                               + _QUOTED + ")"), _keep_quotes),
    # Form and query fields: password=..., access_token=...
    (_SECRET_WORDS, re.compile(r"(?i)((?:token|passw(?:or)?d|pwd|secret)=)[^&\s\"']+"), r"\1" + REDACTED),
    # JWTs (header and payload are base64url JSON objects: "eyJ"), also cut short.
    (("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{10,}(?:\.[A-Za-z0-9_-]*){0,2}"), REDACTED),
)
