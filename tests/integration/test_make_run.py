"""`make run` on a copy of the project with no environment: migrates SQLite, seeds, and answers /healthz in 90 s.

The copy reuses this test run's virtualenv (VENV=...) so the test measures start-up, not package downloads."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project_copy(target: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, json.loads(response.read())


def _succeeded(tmp_path: Path) -> str:
    return "\n".join(line for line in (tmp_path / "run.log").read_text().splitlines() if " succeeded in " in line)


def test_make_run_answers_healthz_within_90_seconds_with_no_environment(tmp_path):
    project = project_copy(tmp_path / "project")
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}  # nothing of ours
    venv = Path(sys.prefix)
    log = (tmp_path / "run.log").open("w")
    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "run", f"VENV={venv}", f"PORT={port}"],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        answer = None
        while time.monotonic() - started < 90 and process.poll() is None:
            try:
                answer = get_json(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                time.sleep(0.5)  # polling a real server process; the clock is not under test here
        output = (tmp_path / "run.log").read_text()
        assert answer == (200, {"status": "ok"}), output[-3000:]
        assert time.monotonic() - started < 90
        # It used the embedded defaults: a SQLite file and the filesystem broker, and printed the demo logins.
        assert (project / "var" / "trialsite.sqlite3").exists()
        assert "demo-coordinator-2026" in output
        status, ready = get_json(f"http://127.0.0.1:{port}/readyz")
        assert (status, ready["database"], ready["broker"]) == (200, "ok", "ok")
        # The worker consumes from the filesystem broker: the seed's follow-up tasks (reminder planning for the demo
        # participants) run against the SQLite file without errors.
        deadline = time.monotonic() + 60
        while "notifications.reconcile_participant" not in _succeeded(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.5)  # polling a real worker process
        output = (tmp_path / "run.log").read_text()
        assert "notifications.reconcile_participant" in _succeeded(tmp_path), output[-3000:]
        assert "Traceback" not in output, output[-5000:]
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does in a terminal
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        log.close()
    # Ctrl-C stopped everything it started: nothing of the group is left and the port is free again.
    # (The worker finishes a warm shutdown first, so give the group a moment to drain.)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    left = subprocess.run(["ps", "-o", "pid,stat,cmd", "-g", str(process.pid)], capture_output=True, text=True).stdout
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    assert str(port) not in left, left
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine; a listener is not
        sock.bind(("127.0.0.1", port))
        sock.listen()
