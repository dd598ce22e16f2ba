"""Classroom serving: HTTPS on every interface with a self-signed certificate, the join address and
its QR code. The tests talk to the server only through 127.0.0.1, whatever address it prints."""

from __future__ import annotations

import io
import os
import re
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import segno
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import ROOT, free_port, stop_group, wait_for
from tl_core import classroom

ANSI_MODULE = re.compile(r"\x1b\[(40|47)m  ")


def modules_from_terminal(text: str) -> list[list[bool]]:
    """The QR code printed with ANSI colours, read back as rows of modules (True = dark), its light
    border removed."""
    rows = [[m == "40" for m in ANSI_MODULE.findall(line)] for line in text.splitlines()]
    rows = [r for r in rows if r and any(r)]  # the border rows are all light
    left = min(r.index(True) for r in rows)
    right = max(len(r) - r[::-1].index(True) for r in rows)
    return [r[left:right] for r in rows]


def modules_from_png(png: bytes, scale: int, border: int) -> list[list[bool]]:
    """A QR image read back by sampling the centre of every module."""
    img = Image.open(io.BytesIO(png)).convert("L")
    n = img.width // scale - 2 * border
    return [[img.getpixel(((border + x) * scale + scale // 2, (border + y) * scale + scale // 2)) < 128
             for x in range(n)] for y in range(n)]


def reference(url: str) -> list[list[bool]]:
    """segno's own encoding of ``url``: what a phone decoding the printed code must find."""
    return [[bool(m) for m in row] for row in segno.make_qr(url, error="m").matrix]


def test_the_printed_and_shown_qr_codes_encode_the_join_address():
    url = classroom.join_url("192.168.1.20", 8501, "ABC234")
    assert modules_from_terminal(classroom.qr_terminal(url)) == reference(url)
    assert modules_from_png(classroom.qr_png(url, scale=8), 8, 4) == reference(url)
    assert reference(url) != reference(url.replace("ABC234", "ABC235"))  # the comparison can fail


def test_the_certificate_is_made_once_and_again_for_a_new_address(tmp_path):
    cert, key = classroom.ensure_certificate(tmp_path, "10.0.0.7")
    first = cert.read_bytes()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert classroom.ensure_certificate(tmp_path, "10.0.0.7")[0].read_bytes() == first
    assert classroom.ensure_certificate(tmp_path, "10.0.0.8")[0].read_bytes() != first  # the laptop moved
    assert "10.0.0.8" in classroom._hosts_of(cert) and "127.0.0.1" in classroom._hosts_of(cert)


def _listening_on_all_interfaces(port: int) -> bool:
    """True when a TCP socket in LISTEN state is bound to 0.0.0.0:``port`` (Linux /proc)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if local == f"00000000:{port:04X}" and state == "0A":
            return True
    return False


@pytest.mark.slow
def test_start_sh_classroom_serves_https_on_all_interfaces(tmp_path):
    port = free_port()
    out = tmp_path / "stdout.txt"
    env = {**os.environ, "TL_CLASSROOM_DIR": str(tmp_path / "classroom"), "TL_RUNS_DIR": str(tmp_path / "runs"),
           "TL_DATA_ROOT": str(tmp_path / "data"), "TL_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("TL_CLASSROOM_HOST", None)
    with open(out, "w") as fh:
        proc = subprocess.Popen(["bash", "scripts/start.sh", "--classroom", "--port", str(port),
                                 "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        cert = tmp_path / "classroom" / "tls" / "cert.pem"
        trusted = ssl.create_default_context(cafile=None)

        def health() -> bool:
            if not cert.is_file():
                return False
            ctx = ssl.create_default_context(cafile=str(cert))  # verified: 127.0.0.1 is in the certificate
            try:
                return urllib.request.urlopen(f"https://127.0.0.1:{port}/_stcore/health", timeout=2,
                                              context=ctx).read() == b"ok"
            except OSError:
                return False

        wait_for(health, 300, "the classroom server to answer over TLS")
        assert _listening_on_all_interfaces(port)
        with pytest.raises(OSError):  # plain http is not served
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read()
        with pytest.raises(urllib.error.URLError) as refused:  # the system's trust store does not know it
            urllib.request.urlopen(f"https://127.0.0.1:{port}/_stcore/health", timeout=2, context=trusted)
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
        text = out.read_text()
        url = re.search(r"Students join at: (\S+)", text).group(1)
        assert re.fullmatch(rf"https://[\w.-]+:{port}/\?code=[A-Z2-9]{{6}}", url), url
        assert modules_from_terminal(text) == reference(url)
        assert re.search(r"Teacher PIN: \d{6}", text)
    finally:
        stop_group(proc, 15)


def test_join_page_shows_the_address_only_in_classroom_mode(env, monkeypatch):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    with pytest.raises(Exception):
        at.switch_page("pages/join.py").run()  # not a page of the one-person app
    monkeypatch.setenv("TL_CLASSROOM", "1")
    monkeypatch.setenv("TL_CLASSROOM_DIR", str(env / "classroom"))
    monkeypatch.setenv("TL_JOIN_URL", "https://10.1.2.3:8501/join?code=ABC234")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    at.switch_page("pages/join.py").run()
    assert not at.exception
    assert any("https://10.1.2.3:8501/join?code=ABC234" in c.value for c in at.code)
    assert at.get("image")
