"""A classroom in a real Chromium, over HTTPS, talking only to 127.0.0.1: two students in two
browser contexts never see or stop each other's runs (not even by typing the other's run id in the
address), the teacher sees both, and a third student over the quota is told what to do."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import ROOT, free_port, settled, stop_group, wait_for
from hostile import jpeg_bytes, zip_bytes
from test_e2e_browser import browser, shot  # noqa: F401 (the shared, CI-required browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def classroom_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("classroom")
    port = free_port()
    env = {**os.environ, "TL_CLASSROOM_DIR": str(tmp / "classroom"), "TL_RUNS_DIR": str(tmp / "runs"),
           "TL_DATA_ROOT": str(tmp / "data"), "TL_CACHE_DIR": str(tmp / "cache"), "TL_WORKSPACE_QUOTA_MB": "0.05"}
    out = tmp / "stdout.txt"
    with open(out, "w") as fh:
        proc = subprocess.Popen(["bash", "scripts/start.sh", "--classroom", "--port", str(port),
                                 "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "Teacher PIN" in out.read_text(), 300, "the classroom banner")
        text = out.read_text()
        code = re.search(r"Join code: (\w+)", text).group(1)
        pin = re.search(r"Teacher PIN: (\d+)", text).group(1)

        def up() -> bool:
            import ssl
            import urllib.request

            ctx = ssl.create_default_context(cafile=str(tmp / "classroom" / "tls" / "cert.pem"))
            try:
                return urllib.request.urlopen(f"https://127.0.0.1:{port}/_stcore/health", context=ctx,
                                              timeout=2).read() == b"ok"
            except OSError:
                return False

        wait_for(up, 120, "the classroom server")
        yield f"https://127.0.0.1:{port}", code, pin, tmp / "classroom"
    finally:
        stop_group(proc, 15)


def student(browser, url: str, code: str, name: str):  # noqa: F811
    """A new browser context (another device) that joins as ``name``; returns the page and its workspace token."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1300, "height": 1500})
    page = context.new_page()
    page.goto(f"{url}/?code={code}")  # what the QR code opens
    try:
        page.get_by_label("Your name (or a nickname)").fill(name)
    finally:
        shot(page, f"30-join-{name}")
    expect(page.get_by_label("Join code")).to_have_value(code)
    page.get_by_role("button", name="Join", exact=True).click()
    page.get_by_text(f"You are working in {name}'s workspace").first.wait_for(timeout=60_000)
    return page, re.search(r"ws=([\w-]+)", page.url).group(1)


def plant_run(classroom: Path, token: str, run_id: str, **status) -> Path:
    """A run in the workspace of ``token`` (as a finished training leaves it)."""
    ws = next(p for p in (classroom / "workspaces").iterdir()
              if json.loads((p / "workspace.json").read_text())["token"] == token)
    path = ws / "runs" / run_id
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"data": "/x/hands", "backbone": "efficientnet_lite0",
                                                  "scenario": 1}))
    (path / "status.json").write_text(json.dumps({"state": "succeeded", "result": {"test_accuracy": 0.9},
                                                  **status}))
    return path


def nav(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.get_by_role("heading", name=re.compile(re.escape(title.split(" · ")[-1]))).first.wait_for(timeout=90_000)


def test_two_students_a_teacher_and_a_full_workspace(classroom_server, browser):  # noqa: F811
    url, code, pin, classroom = classroom_server
    # The server's first request is a page's address (a reload after a restart): the app's own menu.
    teacher = browser.new_context(ignore_https_errors=True, viewport={"width": 1300, "height": 1400}).new_page()
    teacher.goto(f"{url}/teacher")
    expect(teacher.locator('[data-testid="stSidebarNav"] a', has_text="Teacher view")).to_be_visible(timeout=60_000)
    expect(teacher.locator('[data-testid="stSidebarNav"] a', has_text=re.compile(r"^\s*teacher\s*$"))).to_have_count(0)
    ann, ann_token = student(browser, url, code, "Ann")
    expect(ann.locator('[data-testid="stSidebarNav"] a', has_text="1 · Plan")).to_be_visible()  # the app's menu
    expect(ann.locator('[data-testid="stImage"] img').first).to_be_visible()
    shot(ann, "30-join-page-qr")
    ben, ben_token = student(browser, url, code, "Ben")
    ann_run = plant_run(classroom, ann_token, "20260101-100000-run-aaaaaa")
    live = plant_run(classroom, ann_token, "20260101-100001-run-bbbbbb", state="queued", queued_at=time.time(),
                     result=None)
    plant_run(classroom, ben_token, "20260101-100002-run-cccccc", **{"result": {"test_accuracy": 0.95}})

    nav(ann, "7 · Runs")
    expect(ann.get_by_text(ann_run.name).first).to_be_attached(timeout=30_000)  # a table cell
    for page_path, title in (("runs", "7 · Runs"), ("train", "4 · Train"), ("evaluate", "5 · Evaluate")):
        ben.goto(f"{url}/{page_path}?ws={ben_token}&run={live.name}")  # Ben types Ann's run ids into the address
        ben.get_by_role("heading", name=title).first.wait_for(timeout=30_000)  # the page itself has rendered
        settled(ben)  # ... all of it
        assert live.name not in ben.content() and ann_run.name not in ben.content(), page_path
    expect(ben.get_by_role("button", name="Stop")).to_have_count(0)  # Train: no run of Ann's to stop
    ben.goto(f"{url}/runs?ws={ben_token}")
    expect(ben.get_by_text("20260101-100002-run-cccccc").first).to_be_attached(timeout=30_000)
    shot(ben, "31-student-runs-only-own")
    ann.goto(f"{url}/train?ws={ann_token}&run={live.name}")  # Ann's own live run: her Stop works
    expect(ann.get_by_role("button", name="Stop")).to_be_enabled(timeout=30_000)

    teacher.reload()
    teacher.get_by_label("Teacher PIN (printed in the terminal that started the app)").fill(pin)
    teacher.get_by_role("button", name="Open").click()
    teacher.get_by_text("Workspaces (2)").first.wait_for(timeout=30_000)
    expect(teacher.get_by_text("Leaderboard per data set").first).to_be_visible()
    expect(teacher.get_by_text(f"Ann · {live.name} · queued")).to_be_visible(timeout=30_000)
    expect(teacher.locator('[data-testid="stDataFrame"]')).to_have_count(2)
    settled(teacher)
    shot(teacher, "32-teacher-view")
    teacher.get_by_role("button", name="Stop", exact=True).click()  # the teacher stops Ann's run, on its row
    teacher.get_by_text(f"{live.name} is stopped.").first.wait_for(timeout=30_000)
    assert json.loads((live / "status.json").read_text())["state"] == "stopped"

    cleo, _token = student(browser, url, code, "Cleo")  # a third student, over the 0.05 MB quota
    nav(cleo, "2 · Data")
    cleo.get_by_text("Upload a zip").first.click()
    upload = classroom.parent / "cleo.zip"
    upload.write_bytes(zip_bytes([(f"mine/red/r{i}.jpg", jpeg_bytes("red", i)) for i in range(40)]))
    cleo.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(upload))
    cleo.get_by_role("button", name="Unpack and use").click()
    cleo.get_by_text(re.compile(r"over its limit of 0.05 MB: delete a data set")).first.wait_for(timeout=60_000)
    shot(cleo, "33-over-quota")
