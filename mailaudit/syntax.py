"""Syntax of the values a user gives the suite: host names, domains, mailboxes, ports, URLs.

Each ``check_*`` function returns the value (normalised where said) or raises :class:`BadSyntax`
with a short reason; mailaudit.config turns that into a one-line ConfigError naming the option.
The rules are the RFCs' own, so that nothing that reaches a DNS query or an SMTP command line can
be malformed: no control character (CR, LF, NUL) ever passes, and only ASCII is accepted (an
internationalised name is given in its ``xn--`` form; the suite does not negotiate SMTPUTF8).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

MAX_LABEL = 63  # octets per label, RFC 1035 §2.3.4
MAX_NAME = 253  # characters of a name without its final dot (255 octets in wire form, RFC 1035 §2.3.4)
MAX_LOCAL_PART = 64  # RFC 5321 §4.5.3.1.1
MAX_MAILBOX = 254  # RFC 5321 §4.5.3.1.3: a path is at most 256 octets including "<" and ">"

_LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", re.ASCII)
_SELECTOR_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?", re.ASCII)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_STRING = re.compile(rf"{_ATOM}(?:\.{_ATOM})*", re.ASCII)
_QUOTED_STRING = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"', re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadSyntax(ValueError):
    """A value that does not have the syntax its option needs; the message says why."""


def check_text(value: str) -> str:
    """Any option value: not empty, no control character."""
    if not value or not value.strip():
        raise BadSyntax("empty value")
    control = _CONTROL.search(value)
    if control:
        raise BadSyntax(f"control character {_name(control.group())} not allowed")
    return value


def check_hostname(value: str, what: str = "host name") -> str:
    """A DNS host name (letters, digits, hyphens; labels 1-63 octets; at most 253 characters
    without the final dot). A final dot is allowed and kept."""
    check_text(value)
    if not value.isascii():
        raise BadSyntax(f"{what} must be ASCII (give an internationalised name in its xn-- form)")
    name = value[:-1] if value.endswith(".") else value
    for label in name.split("."):
        _check_label(label, _LDH_LABEL, what, "letters, digits and inner hyphens")
    if len(name) > MAX_NAME:
        raise BadSyntax(f"{what} is {len(name)} characters long; at most {MAX_NAME} (RFC 1035 §2.3.4)")
    if name.rsplit(".", 1)[-1].isdigit():
        raise BadSyntax(f"{what} ends in an all-numeric label (an IP address is not a {what})")
    return value


def check_domain(value: str) -> str:
    """A mail domain: a host name, returned without a final dot (it goes into addresses)."""
    return check_hostname(value, "domain name").removesuffix(".")


def check_server(value: str) -> str:
    """A server to audit: a host name or an IPv4/IPv6 address literal."""
    check_text(value)
    if is_ip_literal(value):
        return value
    return check_hostname(value)


def check_selector(value: str) -> str:
    """A DKIM selector (RFC 6376 §3.1: dot-separated labels; ``_`` tolerated, it is only ever a
    DNS name)."""
    check_text(value)
    if not value.isascii():
        raise BadSyntax("selector must be ASCII")
    for label in value.split("."):
        _check_label(label, _SELECTOR_LABEL, "selector", "letters, digits, '_' and inner hyphens")
    if len(value) > MAX_NAME:
        raise BadSyntax(f"selector is {len(value)} characters long; at most {MAX_NAME}")
    return value


def check_local_part(value: str) -> str:
    """An RFC 5321 Local-part: a Dot-string or a Quoted-string of printable ASCII, ≤ 64 octets."""
    check_text(value)
    if not value.isascii():
        raise BadSyntax("local part must be ASCII (the suite does not use SMTPUTF8)")
    if len(value) > MAX_LOCAL_PART:
        raise BadSyntax(f"local part is {len(value)} characters long; at most {MAX_LOCAL_PART} "
                        "(RFC 5321 §4.5.3.1.1)")
    if not (_DOT_STRING.fullmatch(value) or _QUOTED_STRING.fullmatch(value)):
        raise BadSyntax("local part is neither a dot-atom nor a quoted string (RFC 5321 §4.1.2)")
    return value


def check_mailbox(value: str) -> str:
    """An RFC 5321 Mailbox ``local-part@domain`` (domain a host name or an address literal)."""
    check_text(value)
    if len(value) > MAX_MAILBOX:
        raise BadSyntax(f"address is {len(value)} characters long; at most {MAX_MAILBOX} (RFC 5321 §4.5.3.1.3)")
    local, at, domain = value.rpartition("@")
    if not at:
        raise BadSyntax("not an address (local-part@domain)")
    check_local_part(local)
    if domain.startswith("[") and domain.endswith("]"):
        _check_address_literal(domain[1:-1])
    else:
        check_hostname(domain, "domain name")
        if domain.endswith("."):
            raise BadSyntax("domain of an address has no final dot")
    return value


def check_port(value: str) -> int:
    """A TCP port: ASCII digits only (no sign, no '²'), 1-65535."""
    text = value.strip()
    if not text:
        raise BadSyntax("empty port")
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        raise BadSyntax(f"{_show(text)} is not a port number (ASCII digits 1-65535)")
    port = int(text)
    if not 0 < port < 65536:
        raise BadSyntax(f"port {port} out of range 1-65535")
    return port


def check_port_list(value: str) -> tuple[int, ...]:
    """A comma-separated list of distinct ports (``25,587,465``)."""
    check_text(value)
    ports = tuple(check_port(part) for part in value.split(","))
    seen: set[int] = set()
    for port in ports:
        if port in seen:
            raise BadSyntax(f"port {port} given twice")
        seen.add(port)
    return ports


def check_url(value: str, schemes: tuple[str, ...]) -> str:
    """An absolute URL with one of ``schemes``, a valid host (``{server}`` allowed) and port, and
    no user or password in it (credentials come from the environment only)."""
    check_text(value)
    if not value.isascii() or " " in value:
        raise BadSyntax("URL must be ASCII without spaces")
    try:
        parts = urlsplit(value.replace("{server}", "server.invalid"))
        port = parts.port
    except ValueError as exc:
        raise BadSyntax(f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        hint = " (plain http:// only with --api-allow-http)" if "http" not in schemes else ""
        given = _show(f"{parts.scheme}://") if parts.scheme else "none"
        raise BadSyntax(f"scheme must be {allowed}{hint}, not {given}")
    if parts.username is not None or parts.password is not None:
        raise BadSyntax("no user or password in the URL; credentials come from the environment")
    if not parts.hostname:
        raise BadSyntax("URL names no host")
    if parts.query or parts.fragment:
        raise BadSyntax("URL must not have a query or a fragment (give the site's base URL)")
    if port == 0:
        raise BadSyntax("port 0 is not a port")
    if not is_ip_literal(parts.hostname):
        check_hostname(parts.hostname)
    return value


def is_ip_literal(value: str) -> bool:
    """True for an IPv4 or IPv6 address (no brackets, no zone index check beyond Python's)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _check_label(label: str, pattern: re.Pattern[str], what: str, allowed: str) -> None:
    if not label:
        raise BadSyntax(f"{what} has an empty label (two dots in a row, or a leading dot)")
    if len(label) > MAX_LABEL:
        raise BadSyntax(f"{what} has a label of {len(label)} characters; at most {MAX_LABEL} (RFC 1035 §2.3.4)")
    if not pattern.fullmatch(label):
        raise BadSyntax(f"{what} label {_show(label)} may hold only {allowed}")


def _check_address_literal(text: str) -> None:
    """``[192.0.2.1]`` or ``[IPv6:2001:db8::1]`` (RFC 5321 §4.1.3)."""
    tagged = text[:5].lower() == "ipv6:"
    try:
        parsed = ipaddress.ip_address(text[5:] if tagged else text)
    except ValueError:
        raise BadSyntax(f"address literal [{_show(text)}] is not an IP address") from None
    if (parsed.version == 6) != tagged:
        raise BadSyntax("address literal: IPv6 needs the 'IPv6:' tag, IPv4 none (RFC 5321 §4.1.3)")


def _name(char: str) -> str:
    names = {"\r": "CR", "\n": "LF", "\0": "NUL", "\t": "TAB", "\x7f": "DEL"}
    return names.get(char, f"U+{ord(char):04X}")


def _show(text: str, limit: int = 40) -> str:
    """A value quoted for a message: repr (so control characters show as escapes), cut."""
    shown = repr(text[:limit])
    return shown + ("…" if len(text) > limit else "")
