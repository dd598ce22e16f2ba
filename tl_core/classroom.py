"""Serve the app to a classroom: HTTPS on every interface with a self-signed certificate made on
first start, a join address with its QR code, a join code for new workspaces and a teacher PIN.

Browsers give the camera only to https pages (or localhost), so the room's phones and Chromebooks
need TLS; a school has no domain name and often no internet, so the certificate is self-signed and
each browser warns once. ``python -m tl_core.classroom [--port N] [--host ADDRESS] [streamlit options]``
(``scripts/start.sh --classroom``) prints everything and then becomes the Streamlit server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import ipaddress
import os
import secrets
import socket
import sys
from pathlib import Path

import segno

from . import settings
from .i18n import _

REPO = Path(__file__).resolve().parents[1]
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed on phones
QR_ERROR = "m"
DARK, LIGHT, RESET = "\x1b[40m  ", "\x1b[47m  ", "\x1b[0m"  # two spaces per module: square in a terminal
QUIET = 2  # modules of light border around the code in the terminal


def lan_address() -> str:
    """This machine's address on the room's network (``TL_CLASSROOM_HOST`` overrides it).

    A UDP ``connect`` only asks the kernel which interface routes there: no packet is sent.
    """
    if os.environ.get("TL_CLASSROOM_HOST"):
        return os.environ["TL_CLASSROOM_HOST"]
    for probe in ("10.255.255.255", "192.168.255.255"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect((probe, 9))
                address = s.getsockname()[0]
            except OSError:
                continue
            if not address.startswith(("127.", "0.")):
                return address
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        address = "127.0.0.1"
    return address


def new_join_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _i in range(6))


def new_pin() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def join_url(host: str, port: int, code: str) -> str:
    """The address students open: the app's root, which is the join page until one has joined (the
    join page's own address would not do: Streamlit serves a default page only at the root)."""
    return f"https://{host}:{port}/?code={code}"


def _hosts_of(cert_file: Path) -> set[str]:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def ensure_certificate(folder: Path, host: str) -> tuple[Path, Path]:
    """The certificate and key in ``folder``, made on first start (and again when this machine's
    address is not in it: the laptop moved to another network). Self-signed, ECDSA P-256, 2 years.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    if cert_file.is_file() and key_file.is_file() and host in _hosts_of(cert_file):
        return cert_file, key_file
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Transfer learning wizard (classroom)")])
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=730))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(key, hashes.SHA256()))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the key: this user only
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def fingerprint(cert_file: Path) -> str:
    """SHA-256 of the certificate, as browsers show it (``AB:CD:...``), to check the warning is ours."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(cert_file.read_bytes()).public_bytes(Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def qr_code(url: str) -> segno.QRCode:
    """The QR code of ``url`` (error correction M: readable from a projector at an angle)."""
    return segno.make_qr(url, error=QR_ERROR)


def qr_matrix(url: str) -> list[list[bool]]:
    """Rows of modules, True = dark, without the quiet zone."""
    return [[bool(m) for m in row] for row in qr_code(url).matrix]


def qr_terminal(url: str) -> str:
    """The QR code drawn with ANSI background colours: black and white on any terminal theme."""
    rows = qr_matrix(url)
    width = len(rows[0]) + 2 * QUIET
    blank = [LIGHT * width + RESET] * QUIET
    body = [LIGHT * QUIET + "".join(DARK if m else LIGHT for m in row) + LIGHT * QUIET + RESET for row in rows]
    return "\n".join(blank + body + blank)


def qr_png(url: str, scale: int = 8) -> bytes:
    buf = io.BytesIO()
    qr_code(url).save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def banner(url: str, code: str, pin: str, cert_print: str) -> str:
    """What the teacher's terminal shows at start."""
    lines = [
        "", _("Classroom mode: the app is served to this room's network over HTTPS."),
        _("Students join at: {url}", url=url), "", qr_terminal(url), "",
        _("Join code: {code}    Teacher PIN: {pin} (keep it to yourself; it opens the teacher view)",
          code=code, pin=pin),
        _("The certificate is self-signed (this laptop made it; there is no internet authority to sign it), so "
          "each browser warns once: choose 'Advanced' → 'Proceed'. Its SHA-256 fingerprint is {fp}.",
          fp=cert_print),
        _("Images and runs stay on this computer, in {folder}.", folder=settings.classroom_dir()), "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Make the certificate, print the join address and QR code, then become the Streamlit server."""
    parser = argparse.ArgumentParser(prog="python -m tl_core.classroom", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--host", default=None, help="the address students use (default: this machine's LAN address)")
    args, streamlit_args = parser.parse_known_args(argv)
    host = args.host or lan_address()
    folder = settings.classroom_dir()
    cert, key = ensure_certificate(folder / "tls", host)
    code, pin = new_join_code(), new_pin()
    url = join_url(host, args.port, code)
    print(banner(url, code, pin, fingerprint(cert)), flush=True)
    env = {**os.environ, "TL_CLASSROOM": "1", "TL_CLASSROOM_DIR": str(folder), "TL_JOIN_URL": url,
           "TL_JOIN_CODE": code, "TL_TEACHER_PIN": pin, "TL_QUEUE_ROOT": str(folder / "workspaces")}
    command = [sys.executable, "-m", "ui.serve", "run", str(REPO / "app.py"), "--server.address", "0.0.0.0",
               "--server.port", str(args.port), "--server.sslCertFile", str(cert), "--server.sslKeyFile", str(key),
               "--server.headless", "true", "--browser.gatherUsageStats", "false", *streamlit_args]
    os.chdir(REPO)
    os.execve(sys.executable, command, env)


if __name__ == "__main__":
    main()
