"""What a real SmarterMail build answers: the first step before auditing it (issue 12).

    python -m mailaudit.discover --api-url https://mail.example.com [--api-fieldmap F]
        [--ca-file F | --api-insecure] [--dns-server IP[:PORT]] [--domain D] [--out DIR]

Credentials come from MAILAUDIT_API_USER / MAILAUDIT_API_PASSWORD (a system administrator). The
tool signs in, reads every endpoint of the field map once (read-only: sign-in, token refresh,
sign-out, the manage-domain impersonation the audit also uses, GETs and paged list POSTs; the map
loader refuses anything that looks like a write), and prints per endpoint whether it answered,
404 or 403, which mapped fields are present or missing, and the response's field names that look
like a missing one. It writes into --out (default reports/discovery):

- ``site-fieldmap.yaml``: a starter site field map. Every endpoint that answered and every field
  found is marked ``confirmed`` (their names exist on this build); value sets keep their status,
  since only a person can check what each value means in the web interface; missing fields and
  404 endpoints carry comments with the candidates found. Edit it, then audit with
  ``--api-fieldmap site-fieldmap.yaml``.
- ``responses/<endpoint>.json``: each answer, redacted (values under secret-looking keys, and
  values that look like tokens, keys, hashes or license numbers, are replaced).
- ``discovery.txt``: the printed report.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mailaudit.errors import ConfigError, DnsError, ProbeError
from mailaudit.fieldmap import (
    ApiSnapshot,
    Endpoint,
    EndpointResult,
    FieldMap,
    FieldSpec,
    ReadState,
    load_fieldmap,
)
from mailaudit.probes.smartermail import ApiSettings, SmarterMailClient, fetch
from mailaudit.redact import REDACTED, redact
from mailaudit.resolver import is_ip, make_resolver, parse_dns_server, resolve_addresses

SECRET_WORDS = frozenset({"password", "passwords", "passwd", "passphrase", "pwd", "secret", "secrets", "token",
                          "tokens", "apikey", "license", "licence", "serial", "otp", "salt", "hash", "credential",
                          "credentials", "private"})
SECRET_VALUE = (
    re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$"),          # JWT-shaped
    re.compile(r"-----BEGIN [A-Z ]+-----"),                                             # PEM
    re.compile(r"^(?=.*\d)[A-Za-z0-9+/=_-]{32,}$"),                                     # long key/hash
    re.compile(r"^[A-Z0-9]{4,6}(-[A-Z0-9]{4,6}){3,}$", re.I),                          # license number
)
MAX_CANDIDATES = 3
MIN_SIMILARITY = 0.6
MAX_PATHS = 5000


# --- redacted dumps -------------------------------------------------------------------------------

def scrub(value: Any, key: str = "") -> Any:
    """A copy of a JSON value with secret-looking values replaced (keys kept, so shapes stay)."""
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, key) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if key and secret_key(key):
        return REDACTED
    if isinstance(value, str):
        if any(pattern.search(value.strip()) for pattern in SECRET_VALUE):
            return REDACTED
        return redact(value)
    return value


def secret_key(key: str) -> bool:
    """A key whose value is a secret: a secret word in its camelCase/snake_case words, or a name
    ending in "key" (dkimPrivateKey, licenseKey; not keySize)."""
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", key)]
    return bool(SECRET_WORDS.intersection(words)) or (bool(words) and words[-1] == "key")


def dump(body: Any) -> str:
    """The redacted JSON text of an answer."""
    return redact(json.dumps(scrub(body), indent=2, ensure_ascii=False, sort_keys=True))


# --- looking for a missing field --------------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[\W_]+", "", name.casefold())


def paths_of(body: Any, prefix: str = "") -> Iterator[str]:
    """Every dotted path of objects in a body (not into list items), at most MAX_PATHS."""
    stack, count = [(prefix, body)], 0
    while stack and count < MAX_PATHS:
        where, node = stack.pop(0)
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            count += 1
            yield path
            if isinstance(value, dict):
                stack.append((path, value))


def candidates(spec: FieldSpec, body: Any) -> list[tuple[str, float]]:
    """Paths of the body whose last name looks like the field's (case, space and separator
    insensitive; similar spellings), best first."""
    wanted = {_norm(p.rsplit(".", 1)[-1]) for p in spec.paths}
    scored = []
    for path in paths_of(body):
        name = _norm(path.rsplit(".", 1)[-1])
        score = max(1.0 if name == w else difflib.SequenceMatcher(None, name, w).ratio() for w in wanted)
        if score >= MIN_SIMILARITY:
            scored.append((path, round(score, 2)))
    return sorted(scored, key=lambda item: (-item[1], item[0]))[:MAX_CANDIDATES]


# --- discovery ------------------------------------------------------------------------------------

@dataclass
class FieldFinding:
    """One mapped field on this build: found or missing, and what looks like it."""

    key: str
    state: ReadState
    shown: str = ""
    candidates: list[tuple[str, float]] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """The field is in the answer (its value may still need checking)."""
        return self.state in (ReadState.OK, ReadState.GUESSED, ReadState.UNMAPPED)


@dataclass
class EndpointFinding:
    """One endpoint on this build: how it answered and its fields."""

    endpoint: Endpoint
    request: str
    answer: str                  # answered | 404 | 403 | error
    detail: str = ""
    body: Any = None
    fields: list[FieldFinding] = field(default_factory=list)


def _answer(result: EndpointResult) -> str:
    if result.state is ReadState.OK:
        return "answered"
    if result.state is ReadState.MISSING:
        return "404"
    return "403" if "HTTP 403" in result.detail else "error"


def discover(settings: ApiSettings, fieldmap: FieldMap, domain: str | None = None) -> list[EndpointFinding]:
    """Read every endpoint of the map once and check its fields (read-only)."""
    client = SmarterMailClient(settings, fieldmap)
    results: dict[tuple[str, str | None], EndpointResult] = {}
    used = {f.endpoint for f in fieldmap.fields.values()}
    endpoints = [e for k, e in fieldmap.endpoints.items() if k in used]
    for endpoint in (e for e in endpoints if e.scope == "public"):
        results[(endpoint.key, None)] = fetch(client, endpoint)
    with client:
        login = fieldmap.auth.login
        for endpoint in (e for e in endpoints if e.scope == "login"):
            results[(endpoint.key, None)] = EndpointResult(f"{login.method} {login.path}", ReadState.OK,
                                                           body=client.login_facts)
        for endpoint in (e for e in endpoints if e.scope == "sysadmin"):
            results[(endpoint.key, None)] = fetch(client, endpoint)
        domain = domain or _first_domain(fieldmap, results)
        if domain:
            _read_domain(client, endpoints, domain, results)
    snapshot = ApiSnapshot(settings.base_url, client.label, fieldmap, results, (domain,) if domain else (),
                           settings.user)
    return [_finding(snapshot, endpoint, domain) for endpoint in endpoints]


def _first_domain(fieldmap: FieldMap, results: dict[tuple[str, str | None], EndpointResult]) -> str | None:
    result = results.get((fieldmap.fields["domain_names"].endpoint, None))
    if result is None or result.state is not ReadState.OK:
        return None
    reading = ApiSnapshot("", "", fieldmap, results, (), "").read("domain_names")
    names = sorted(str(item["name"]).lower() for item in reading.value) if reading.ok else []
    return names[0] if names else None


def _read_domain(client: SmarterMailClient, endpoints: list[Endpoint], domain: str,
                 results: dict[tuple[str, str | None], EndpointResult]) -> None:
    for endpoint in (e for e in endpoints if e.scope == "sysadmin_domain"):
        results[(endpoint.key, domain)] = fetch(client, endpoint, domain)
    scoped = [e for e in endpoints if e.scope == "domain"]
    if not scoped:
        return
    try:
        tokens = client.impersonate(domain)
    except ProbeError as exc:
        for endpoint in scoped:
            results[(endpoint.key, domain)] = EndpointResult(endpoint.describe(domain), ReadState.ERROR,
                                                             detail=f"impersonation failed: {exc}")
        return
    try:
        for endpoint in scoped:
            results[(endpoint.key, domain)] = fetch(client, endpoint, domain, tokens)
    finally:
        client.end_impersonation(tokens)


def _finding(snapshot: ApiSnapshot, endpoint: Endpoint, domain: str | None) -> EndpointFinding:
    where = domain if endpoint.per_domain else None
    result = snapshot.result(endpoint.key, where)
    finding = EndpointFinding(endpoint, result.request, _answer(result), redact(result.detail), result.body)
    if finding.answer != "answered":
        return finding
    for spec in snapshot.fieldmap.fields_of(endpoint.key):
        reading = snapshot.read(spec.key, where)
        shown = _shown(reading.raw) if reading.present else ""
        found = FieldFinding(spec.key, reading.state, shown)
        if not found.found:
            found.candidates = candidates(spec, result.body)
        finding.fields.append(found)
    return finding


def _shown(raw: Any) -> str:
    if isinstance(raw, (dict, list)):
        return f"<{type(raw).__name__} of {len(raw)}>"
    text = json.dumps(scrub(raw, ""), ensure_ascii=False)
    return redact(text if len(text) <= 60 else text[:60] + "...")


# --- output -------------------------------------------------------------------------------------------

def report(findings: list[EndpointFinding], fieldmap: FieldMap, url: str) -> str:
    """The printed report: per endpoint its answer, per field present/missing and candidates."""
    lines = [f"SmarterMail API discovery of {url} with the field map {fieldmap.path}"]
    for finding in findings:
        endpoint = finding.endpoint
        answer = {"answered": "answered", "404": "404 (this build lacks the path: find it on "
                  "<server>/Documentation/api)", "403": "403 (the account lacks the role)",
                  "error": f"error ({finding.detail})"}[finding.answer]
        lines.append(f"endpoint {endpoint.key} [{endpoint.status}] {finding.request}: {answer}")
        for item in finding.fields:
            spec = fieldmap.fields[item.key]
            if item.found:
                note = {ReadState.GUESSED: " (a number: check its meaning)",
                        ReadState.UNMAPPED: " (a value the map does not know)"}.get(item.state, "")
                lines.append(f"  present  {item.key}: {' | '.join(spec.paths)} = {item.shown}{note}")
            else:
                similar = ", ".join(f"{_one_line(p)} ({s:.2f})" for p, s in item.candidates) or "none"
                lines.append(f"  MISSING  {item.key}: {' | '.join(spec.paths)}; similar names: {similar}")
    found = sum(f.found for e in findings for f in e.fields)
    total = sum(len(fieldmap.fields_of(e.endpoint.key)) for e in findings)
    lines.append(f"{found} of {total} mapped fields found; "
                 f"{sum(e.answer == '404' for e in findings)} endpoint(s) answered 404")
    return redact("\n".join(lines))


def site_map(findings: list[EndpointFinding], fieldmap: FieldMap, url: str) -> str:
    """The starter site field map (YAML with comments)."""
    raw = yaml.safe_load(fieldmap.path.read_text(encoding="utf-8"))
    by_endpoint = {f.endpoint.key: f for f in findings}
    by_field = {item.key: item for f in findings for item in f.fields}
    out = [f"# Site field map written by `python -m mailaudit.discover` for {url}.",
           "# Entries this build answered are marked `confirmed` (their names exist here). Still to do by",
           "# hand: for each enum, check what every value means in the web interface (the `ui` place) and",
           "# set `values_status: confirmed`; fix the MISSING fields and 404 endpoints named in comments.",
           f"# Then audit with --api-fieldmap {{this file}}. Based on {fieldmap.path.name}.", "",
           yaml.safe_dump({"version": raw.get("version", 1), "auth": raw["auth"]}, sort_keys=False).rstrip(),
           "", "endpoints:"]
    for key, entry in raw["endpoints"].items():
        finding = by_endpoint.get(key)
        if finding is not None and finding.answer == "answered" and entry.get("status") == "assumed":
            entry = {**entry, "status": "confirmed", "source": f"discovery: answered on this build; {entry['source']}"}
        if finding is not None and finding.answer != "answered":
            out.append(f"  # {key}: {_one_line(finding.request)} answered {finding.answer}: find the path on "
                       "<server>/Documentation/api")
        out.append(_indent({key: entry}))
    out += ["", "fields:"]
    for key, entry in raw["fields"].items():
        item = by_field.get(key)
        if item is not None and item.found and entry.get("status") == "assumed":
            entry = {**entry, "status": "confirmed", "source": f"discovery: present on this build; {entry['source']}"}
        if item is not None and not item.found and item.candidates:
            out.append(f"  # {key}: MISSING; similar names in the same answer: "
                       + ", ".join(f"{_one_line(p)} ({s:.2f})" for p, s in item.candidates))
        elif item is not None and not item.found:
            out.append(f"  # {key}: MISSING; no similar name in the answer")
        if item is not None and item.found and entry.get("type") in ("enum", "list") and \
                (entry.get("values_status") or entry.get("status")) != "seen":
            out.append(f"  # {key}: check each value's meaning at: {entry.get('ui', '')}")
        out.append(_indent({key: entry}))
    return "\n".join(out) + "\n"


def _one_line(text: str) -> str:
    """Server-supplied text for a YAML comment: redacted, on one line."""
    return " ".join(redact(text).split())


def _indent(entry: dict[str, Any]) -> str:
    text = yaml.safe_dump(entry, sort_keys=False, allow_unicode=True, width=120)
    return "\n".join("  " + line for line in text.rstrip().splitlines())


def write(findings: list[EndpointFinding], fieldmap: FieldMap, url: str, out: Path) -> str:
    """Write the site map, the redacted answers and the report; return the report text."""
    text = report(findings, fieldmap, url)
    (out / "responses").mkdir(parents=True, exist_ok=True)
    for finding in findings:
        if finding.body is not None:
            (out / "responses" / f"{finding.endpoint.key}.json").write_text(dump(finding.body) + "\n",
                                                                             encoding="utf-8")
    (out / "site-fieldmap.yaml").write_text(site_map(findings, fieldmap, url), encoding="utf-8")
    (out / "discovery.txt").write_text(text + "\n", encoding="utf-8")
    return text


# --- command line -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m mailaudit.discover",
                                     description="what a SmarterMail build's API answers (read-only)")
    parser.add_argument("--api-url", required=True, help="the web interface URL, e.g. https://mail.example.com")
    parser.add_argument("--api-fieldmap", help="field map to check (default: mailaudit/fieldmap.yaml)")
    parser.add_argument("--ca-file", help="CA bundle to trust instead of the system's")
    parser.add_argument("--api-insecure", action="store_true", help="do not verify the API's certificate")
    parser.add_argument("--dns-server", metavar="IP[:PORT]",
                        help="resolver for the URL's host name (default: the system's), as the audit's option")
    parser.add_argument("--domain", help="the domain whose per-domain endpoints are read (default: the first)")
    parser.add_argument("--out", default="reports/discovery", help="output folder (default reports/discovery)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per wait for the server")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run a discovery; 0 done, 1 the API could not be used, 2 bad input."""
    args = parse_args(argv)
    user, password = os.environ.get("MAILAUDIT_API_USER"), os.environ.get("MAILAUDIT_API_PASSWORD")
    try:
        if not user or not password:
            raise ConfigError("set MAILAUDIT_API_USER and MAILAUDIT_API_PASSWORD (a system administrator)")
        if not args.api_url.lower().startswith("https://"):
            raise ConfigError(f"--api-url {args.api_url}: expected https://host[:port]")
        if args.ca_file and not Path(args.ca_file).is_file():
            raise ConfigError(f"--ca-file {args.ca_file}: no such file")
        fieldmap = load_fieldmap(args.api_fieldmap)
    except ConfigError as exc:
        print(f"mailaudit.discover: {exc}", file=sys.stderr)
        return 2
    verify: bool | str = False if args.api_insecure else (args.ca_file or True)
    try:
        connect_ip = _address(args.api_url, args.dns_server, args.timeout)
        settings = ApiSettings(args.api_url, user, password, verify=verify, timeout_s=args.timeout,
                               connect_ip=connect_ip)
        findings = discover(settings, fieldmap, args.domain)
    except ConfigError as exc:
        print(f"mailaudit.discover: {exc}", file=sys.stderr)
        return 2
    except ProbeError as exc:
        print(f"mailaudit.discover: {redact(str(exc))}", file=sys.stderr)
        return 1
    out = Path(args.out)
    print(write(findings, fieldmap, args.api_url, out))
    print(f"wrote {out / 'site-fieldmap.yaml'}, {out / 'responses'}/, {out / 'discovery.txt'}")
    return 0


def _address(url: str, dns_server: str | None, timeout: float) -> str | None:
    """With --dns-server: the address of the URL's host through that resolver (the certificate
    is still checked for the host name); else None (the system resolves it)."""
    host = urlsplit(url).hostname
    if not dns_server or not host or is_ip(host):
        return None
    try:
        addresses = resolve_addresses(make_resolver(parse_dns_server(dns_server), timeout), host)
    except DnsError as exc:
        raise ConfigError(f"--api-url {url}: cannot resolve {host} via {dns_server}: {exc}") from None
    if not addresses:
        raise ConfigError(f"--api-url {url}: {host} has no A/AAAA record via {dns_server}")
    return addresses[0]


if __name__ == "__main__":
    sys.exit(main())
