"""Helpers for the API unit tests: an in-process simulator on a free loopback port.

The certificate is a throwaway one made here for 127.0.0.1 (unit tests run without the lab and
its CA); the lab itself uses lab/run/certs from lab/components/10-certs.sh.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
SMSIM_DIR = ROOT / "lab" / "smsim"
LAB_USER = "audit-admin"
LAB_PASSWORD = "Unit-Only-Pw-4fQz9"


def smsim() -> ModuleType:
    """The simulator module, loaded from lab/smsim/smsim.py."""
    if "smsim" not in sys.modules:
        spec = importlib.util.spec_from_file_location("smsim", SMSIM_DIR / "smsim.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["smsim"] = module
        spec.loader.exec_module(module)
    return sys.modules["smsim"]


def profile(name: str) -> dict[str, Any]:
    """A lab profile (hardened or weak) as data."""
    return smsim().load_profile(SMSIM_DIR / "profiles" / f"{name}.yaml")


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""

    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path, ips: tuple[str, ...] = ("127.0.0.1",)) -> TlsFiles:
    """Write a CA and a leaf certificate (EC P-256) valid for the IPs (127.0.0.1) and localhost."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailaudit unit-test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips)]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


@dataclass
class RunningSim:
    """A started simulator: its URL, its shared state (for faults), the TLS files."""

    url: str
    server: Any
    tls: TlsFiles
    log: Path

    @property
    def state(self) -> Any:
        """The simulator's shared state (tokens, fault switch)."""
        return self.server.state

    def set_fault(self, mode: str | None, **kwargs: Any) -> None:
        """Switch a fault on (mode) or off (None)."""
        self.state.fault = smsim().Fault(mode, **kwargs) if mode else None
        self.state.fault_hits = 0


@contextmanager
def running_sim(name: str, directory: Path, data: dict[str, Any] | None = None) -> Iterator[RunningSim]:
    """Start a simulator of profile `name` (or the given data) on 127.0.0.1, stop it after."""
    module = smsim()
    directory.mkdir(parents=True, exist_ok=True)
    tls = make_tls(directory)
    log = directory / "smsim.log"
    server = module.make_server(data or profile(name), "127.0.0.1", 0, LAB_USER, LAB_PASSWORD,
                                tls.cert, tls.key, log_file=log)
    module.serve_in_thread(server)
    try:
        yield RunningSim(f"https://127.0.0.1:{server.server_address[1]}", server, tls, log)
    finally:
        server.shutdown()
        server.server_close()


# --- offline: the simulator's router behind a requests adapter (no sockets) -------------------

class SimAdapter:
    """A requests transport adapter answering from smsim.route in-process (offline tests)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.requests: list[tuple[str, str]] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        """Route one prepared request; honour the fault switch like the HTTP server does."""
        import json
        from urllib.parse import urlsplit

        import requests

        module = smsim()
        path = urlsplit(request.url).path
        self.requests.append((request.method, path))
        body = json.loads(request.body) if request.body else {}
        fault = module.current_fault(self.state, path)
        if fault is not None and fault.mode == "slow":
            raise requests.exceptions.ReadTimeout("simulated slow reply")
        reply = module.fault_reply(fault) if fault is not None else module.route(
            self.state, request.method, path, body, request.headers.get("Authorization", ""))
        response = requests.Response()
        response.status_code = reply.status
        response.url = request.url
        response.request = request
        response.headers["Server"] = module.SERVER_HEADER
        for name, value in reply.headers:
            response.headers[name] = value
        if reply.raw is not None:
            response._content = reply.raw
        elif isinstance(reply.body, str):
            response._content = reply.body.encode()
        else:
            response._content = json.dumps(reply.body).encode()
        response._content_consumed = True      # no raw stream: iter_content() yields _content
        return response

    def close(self) -> None:
        """Nothing to close."""


def offline_session(name: str, data: dict[str, Any] | None = None,
                    user: str = LAB_USER, password: str = LAB_PASSWORD) -> tuple[Any, Any, SimAdapter]:
    """A requests Session wired to an in-process simulator state: (session, state, adapter)."""
    import requests

    module = smsim()
    state = module.make_state(data or profile(name), user, password)
    adapter = SimAdapter(state)
    session = requests.Session()
    session.mount("https://", adapter)
    return session, state, adapter


OFFLINE_URL = "https://mail.sim.test"
