"""Helpers for the TLS self-tests: throwaway certificates and small (mis)behaving listeners.

Every listener binds a 127.0.0.x address on an ephemeral port, serves from daemon threads and
is closed by its context manager. Nothing here talks to anything but loopback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LISTEN_IP = "127.0.0.31"
IO_TIMEOUT_S = 10


# --- certificates ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pki:
    """A throwaway CA and one leaf signed by it (files in a temp folder)."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    ca: x509.Certificate
    leaf: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailaudit selftest"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(days: int = 30) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A CA certificate with the extensions strict validators ask for."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(_name("selftest CA")).issuer_name(_name("selftest CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=365)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_leaf(ca: tuple[x509.Certificate, rsa.RSAPrivateKey] | None, names: list[str], days: int = 30,
              bits: int = 2048, hash_algorithm: hashes.HashAlgorithm | None = None,
              ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A server certificate for ``names`` (DNS names or IPs), signed by ``ca`` or self-signed."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    issuer_cert, issuer_key = ca if ca else (None, key)
    builder = (x509.CertificateBuilder().subject_name(_name(names[0] if names else "nobody"))
               .issuer_name(issuer_cert.subject if issuer_cert else _name(names[0] if names else "nobody"))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=max(1, 10 - days)))
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if issuer_cert:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key, hash_algorithm or hashes.SHA256()), key


def write_pki(folder: Path, names: list[str], days: int = 30, bits: int = 2048, self_signed: bool = False) -> Pki:
    """CA + leaf written as PEM files under ``folder``."""
    ca = make_ca()
    leaf, key = make_leaf(None if self_signed else ca, names, days=days, bits=bits)
    folder.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"
    ca_file.write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Pki(ca_file, cert_file, key_file, ca[0], leaf)


def server_context(pki: Pki) -> ssl.SSLContext:
    """A TLS 1.2+ server context with the leaf."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki.cert_file, pki.key_file)
    return context


# --- listeners -------------------------------------------------------------------------------------

Behaviour = Callable[[socket.socket], None]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


def _handler(behaviour: Behaviour, held: list[socket.socket]) -> type[socketserver.BaseRequestHandler]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            sock.settimeout(IO_TIMEOUT_S)
            held.append(sock)
            with contextlib.suppress(OSError, ssl.SSLError):
                behaviour(sock)
    return Handler


@contextlib.contextmanager
def listening(behaviour: Behaviour, ip: str = LISTEN_IP) -> Iterator[int]:
    """Serve ``behaviour`` on ip:<ephemeral port>; yields the port."""
    held: list[socket.socket] = []
    server = _Server((ip, 0), _handler(behaviour, held))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()


def _lines(sock: socket.socket) -> Iterator[str]:
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = sock.recv(4096)
            if not chunk:
                return
            buffer += chunk
        line, _, buffer = buffer.partition(b"\n")
        yield line.rstrip(b"\r").decode("ascii", "replace")


def silent(sock: socket.socket) -> None:
    """Accept, then say nothing until the client gives up (a handshake timeout)."""
    with contextlib.suppress(OSError):
        while sock.recv(4096):
            pass


def plain_smtp(sock: socket.socket) -> None:
    """An SMTP server without TLS at all: on an implicit-TLS port it 'speaks no TLS'."""
    sock.sendall(b"220 plain.selftest ESMTP no TLS here\r\n")
    for line in _lines(sock):
        if line.upper().startswith("QUIT"):
            sock.sendall(b"221 bye\r\n")
            return
        sock.sendall(b"250-plain.selftest\r\n250 SIZE 10240000\r\n" if line.upper().startswith("EHLO")
                     else b"502 5.5.2 unrecognised\r\n")


def smtp_starttls(context: ssl.SSLContext | None = None, advertise: bool = True, answer: str = "220 2.0.0 go"
                  ) -> Behaviour:
    """An SMTP server whose STARTTLS is advertised or not, answered ``answer``, then TLS (if context)."""
    def behaviour(sock: socket.socket) -> None:
        sock.sendall(b"220 starttls.selftest ESMTP\r\n")
        for line in _lines(sock):
            verb = line.upper().split(" ")[0]
            if verb == "EHLO":
                extra = b"250-STARTTLS\r\n" if advertise else b""
                sock.sendall(b"250-starttls.selftest\r\n" + extra + b"250 8BITMIME\r\n")
            elif verb == "STARTTLS":
                sock.sendall(answer.encode() + b"\r\n")
                if answer.startswith("220") and context is not None:
                    _tls(sock, context)
                    return
            elif verb == "QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            else:
                sock.sendall(b"502 5.5.2 unrecognised\r\n")
    return behaviour


def imap_starttls(context: ssl.SSLContext | None, advertise: bool = True) -> Behaviour:
    """An IMAP server with (or without) STARTTLS in its CAPABILITY list."""
    def behaviour(sock: socket.socket) -> None:
        sock.sendall(b"* OK selftest IMAP ready\r\n")
        for line in _lines(sock):
            tag, _, command = line.partition(" ")
            if command.upper() == "CAPABILITY":
                caps = "IMAP4rev1 STARTTLS LOGINDISABLED" if advertise else "IMAP4rev1 LOGINDISABLED"
                sock.sendall(f"* CAPABILITY {caps}\r\n{tag} OK done\r\n".encode())
            elif command.upper() == "STARTTLS" and context is not None:
                sock.sendall(f"{tag} OK begin TLS\r\n".encode())
                _tls(sock, context)
                return
            else:
                sock.sendall(f"{tag} BAD no\r\n".encode())
    return behaviour


def pop3_starttls(context: ssl.SSLContext | None, advertise: bool = True) -> Behaviour:
    """A POP3 server with (or without) STLS in its CAPA list."""
    def behaviour(sock: socket.socket) -> None:
        sock.sendall(b"+OK selftest POP3 ready\r\n")
        for line in _lines(sock):
            if line.upper() == "CAPA":
                sock.sendall(b"+OK\r\nUSER\r\n" + (b"STLS\r\n" if advertise else b"") + b".\r\n")
            elif line.upper() == "STLS" and context is not None:
                sock.sendall(b"+OK begin TLS\r\n")
                _tls(sock, context)
                return
            else:
                sock.sendall(b"-ERR no\r\n")
    return behaviour


def implicit_tls(context: ssl.SSLContext) -> Behaviour:
    """TLS from the first byte."""
    def behaviour(sock: socket.socket) -> None:
        _tls(sock, context)
    return behaviour


def _tls(sock: socket.socket, context: ssl.SSLContext) -> None:
    with context.wrap_socket(sock, server_side=True) as tls, contextlib.suppress(OSError):
        tls.recv(1)


def free_port(ip: str = LISTEN_IP) -> int:
    """A port nothing listens on (bound, then released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


# --- servers staging what OpenSSL 3 (Postfix, Dovecot) cannot -------------------------------------

@contextlib.contextmanager
def tlslite_ssl3_server(cert_file: Path, key_file: Path, ip: str) -> Iterator[int]:
    """SSL 3.0 up to TLS 1.2, no TLS 1.3 (tlslite-ng, pure Python): trips TLS-NO-SSL and TLS-MODERN.

    Debian 12's OpenSSL has no SSL 3.0 at all, so no lab Postfix or Dovecot can offer it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # tlslite-ng imports asyncore
        from tlslite.api import X509, HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey

    chain = X509CertChain([X509().parse(cert_file.read_text())])
    key = parsePEMKey(key_file.read_text(), private=True)
    settings = HandshakeSettings()
    settings.minVersion, settings.maxVersion = (3, 0), (3, 3)

    def behaviour(sock: socket.socket) -> None:
        connection = TLSConnection(sock)
        connection.handshakeServer(certChain=chain, privateKey=key, settings=settings)
        connection.read(max=1)

    with listening(_quiet(behaviour), ip) as port:
        yield port


def _quiet(behaviour: Behaviour) -> Behaviour:
    def run(sock: socket.socket) -> None:
        with contextlib.suppress(Exception):  # tlslite raises its own errors on every refused handshake
            behaviour(sock)
    return run


@contextlib.contextmanager
def gnutls_insecure_renegotiation_server(cert_file: Path, key_file: Path) -> Iterator[int]:
    """gnutls-serv without RFC 5746 secure renegotiation (%DISABLE_SAFE_RENEGOTIATION): trips
    TLS-VULNERABILITIES. gnutls-serv cannot bind one address; it listens on a free high port."""
    binary = shutil.which("gnutls-serv")
    if binary is None:
        raise FileNotFoundError("gnutls-serv not installed (Debian package gnutls-bin, lab/packages/tls.txt)")
    port = free_port("0.0.0.0")
    process = subprocess.Popen(
        [binary, "--x509certfile", str(cert_file), "--x509keyfile", str(key_file), "--port", str(port),
         "--priority", "NORMAL:%DISABLE_SAFE_RENEGOTIATION", "--echo", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + IO_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        if process.poll() is None:
            process.kill()
