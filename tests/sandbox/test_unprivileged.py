"""The attack tests once more, with the sandbox started by an ordinary user.

CI runs as root, and root takes other paths through the sandbox (capabilities
to drop, a pids cgroup, bubblewrap's --cap-drop). An ordinary user takes the
paths most people's machines take: unprivileged user namespaces, RLIMIT_NPROC.
So when the suite runs as root, this test re-runs tests/sandbox/test_isolation.py
as `nobody`. The interpreter and the packages it needs are staged in a
world-readable directory, since root's own Python usually lives under /root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from sandbox import backends
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"


def as_nobody(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    drop = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return subprocess.run(drop + argv, capture_output=True, text=True, **kwargs)


def interpreter_for_nobody() -> str | None:
    """A Python of our version that `nobody` may run (root's own is often under /root, 0700)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if os.path.exists(candidate):
            # The binary itself must be reachable, not merely started through a symlink.
            check = "import os, sys; os.stat(os.path.realpath(sys.executable)); print(sys.version_info[:2])"
            probe = as_nobody([candidate, "-c", check])
            if probe.returncode == 0 and probe.stdout.strip() == str(sys.version_info[:2]):
                return candidate
    return None


def stage_packages(dest: Path) -> None:
    """Copy the third-party packages this test session loaded (pytest, jsonschema, ...)."""
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    tops = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(site):
            tops.add(Path(file).resolve().relative_to(site).parts[0])
    for top in sorted(tops - {"coder", "sandbox"}):
        src = site / top
        if src.is_dir():
            shutil.copytree(src, dest / top, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / top)


@pytest.mark.skipif(os.geteuid() != 0, reason="already an ordinary user: the suite itself covers this")
@pytest.mark.parametrize("test_file, at_least", [("tests/sandbox/test_isolation.py", 20),
                                                 ("tests/sandbox/test_metadata.py", 15)])
def test_attacks_fail_when_an_ordinary_user_starts_the_sandbox(test_file: str, at_least: int) -> None:
    """The attack files again, with the sandbox started by `nobody`, whose user namespace holds only its own id."""
    if not os.access(SETPRIV, os.X_OK):
        unavailable("setpriv (util-linux) is not installed")
    python = interpreter_for_nobody()
    if python is None:
        unavailable(f"no Python {sys.version_info[:2]} that an ordinary user may run")
    stage = Path(tempfile.mkdtemp(prefix="coder-nobody-"))
    try:
        stage.chmod(0o755)
        src, site, home, tmp = stage / "src", stage / "site", stage / "home", stage / "tmp"
        for name in ("coder", "sandbox", "tests"):
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        site.mkdir()
        stage_packages(site)
        for d in (home, tmp):
            d.mkdir()
            os.chown(d, NOBODY, NOBODY)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONPATH": f"{src}:{site}", "PYTHONDONTWRITEBYTECODE": "1",
        }
        run = as_nobody(
            [python, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--basetemp={tmp / 'pytest'}",
             test_file],
            cwd=src, env=env, timeout=600,
        )
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-4000:]
    passed = int(re.search(r"(\d+) passed", report).group(1))
    assert passed >= at_least, report[-2000:]
    for name in ("landlock", "bwrap"):
        if backends.get(name) is not None:  # available to root here, so it must have run for nobody too
            assert f"the {name} backend is not available" not in report, report[-2000:]
