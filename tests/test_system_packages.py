"""`make test` installs the Debian packages the suite needs, or names them and stops before any test runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bin" / "system-packages"


def _path_with(tmp_path: Path, *commands: str) -> str:
    """A PATH holding only ``commands`` (linked from this machine), so the others look missing."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for command in commands:
        found = shutil.which(command)
        assert found, f"{command} is needed on this machine to run the test"
        (bindir / command).symlink_to(found)
    return str(bindir)


def test_missing_packages_are_named_and_nothing_runs_when_they_cannot_be_installed(tmp_path):
    # No apt-get on the PATH: the script cannot install, so it names every missing package and fails.
    path = _path_with(tmp_path, "id")
    result = subprocess.run(
        ["/bin/bash", str(SCRIPT)], env={**os.environ, "PATH": path}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "missing: " in result.stderr
    named = result.stderr.split("missing: ", 1)[1].splitlines()[0].split()
    assert {"gettext", "postgresql-client", "redis-tools", "nodejs", "npm"} <= set(named)
    assert "apt-get install" in result.stderr


def test_nothing_to_do_when_everything_is_there():
    result = subprocess.run(["/bin/bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stderr) == (0, "")
    assert Path("/usr/bin/chromium").exists() and shutil.which("msgfmt") and shutil.which("npm")


def test_make_test_runs_the_system_packages_step_before_the_suite():
    makefile = (SCRIPT.parents[1] / "Makefile").read_text(encoding="utf-8")
    test_target = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert "system-packages" in test_target.split(":", 1)[1].split()
    ci = (SCRIPT.parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert "apt-get" not in ci, "CI must rely on make test to install what the tests need"
