"""Installing coder without breaking the user's Python, and what the agent's commands find on PATH.

install.sh runs once (a real pip install from the local index into a temporary home), then the
installed `coder` runs a task whose command reports what it sees. The other tests run the test
installation's `coder` with its venv's bin/ on PATH (as the old README had people do) or with a
project venv of the user's own activated.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import API_KEY, CODER, coder, rc
from tests.scripted_server import Reply, ScriptedServer, message

ROOT = Path(__file__).resolve().parents[1]
REPORT = ("echo PY=$(command -v python3); echo PIP=$(command -v pip || echo none); echo RG=$(command -v rg); "
          "rg --version | head -n 1; python3 -c 'import sys; print(\"PREFIX=\" + sys.prefix)'; "
          "echo VENV=${VIRTUAL_ENV-unset}; echo PATH=$PATH")


def seen(server: ScriptedServer) -> dict[str, str]:
    """What the command printed (KEY=value lines), from the output sent back to the model."""
    [out] = [i["output"] for i in server.bodies[-1]["input"] if i.get("type") == "function_call_output"]
    text = out if isinstance(out, str) else str(out)
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isupper():
            found[key] = value
        elif line.startswith("ripgrep "):
            found["RG_VERSION"] = line
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """`sh install.sh` into a fresh home (one pip install for the whole module)."""
    home = tmp_path_factory.mktemp("install") / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}  # the local index, offline
    env.update(HOME=str(home), PATH="/usr/bin:/bin", LANG="C.UTF-8", CODER_INSTALLER="venv", PYTHON=sys.executable)
    r = subprocess.run(["sh", str(ROOT / "install.sh")], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return home, r


def test_install_puts_only_coder_on_path_and_it_runs(installed):
    home, r = installed
    bindir = home / ".local" / "bin"
    assert sorted(os.listdir(bindir)) == ["coder"]
    version = subprocess.run([str(bindir / "coder"), "--version"], env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
                             capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and version.stdout.startswith("coder "), version.stderr
    assert f"{bindir} is not on your PATH" in r.stderr  # and says how to put it there
    venv = home / ".local" / "lib" / "coder" / "venv"
    assert os.path.realpath(bindir / "coder") == os.path.realpath(venv / "bin" / "coder")
    data = home / ".local" / "share" / "coder"
    assert not data.exists()  # the venv is not among the folders commands may not read


def test_the_installed_coders_commands_get_rg_and_the_users_python(installed, server, tmp_path: Path):
    home, _ = installed
    venv_bin = home / ".local" / "lib" / "coder" / "venv" / "bin"
    ws = tmp_path / "ws"
    ws.mkdir()
    server.add(Reply([rc(REPORT)]), Reply([message("ok")]))
    env = {"HOME": str(home), "PATH": f"{home}/.local/bin:{venv_bin}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": server.base_url}
    r = subprocess.run(["coder", "exec", "what is here?"], env=env, cwd=ws, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    got = seen(server)
    assert got["PY"] and not got["PY"].startswith(str(venv_bin)) and not got["PIP"].startswith(str(venv_bin))
    assert not got["PREFIX"].startswith(str(venv_bin.parent))
    assert got["RG"] == str(home / ".local" / "lib" / "coder" / "bin" / "rg")
    assert got["RG_VERSION"].startswith("ripgrep 14")
    assert str(venv_bin) not in got["PATH"].split(":")
    assert sorted(os.listdir(home / ".local" / "lib" / "coder" / "bin")) == ["rg"]


def test_commands_never_see_coders_own_venv_even_activated(server, env, workspace: Path):
    own = CODER.parent
    env = {**env, "PATH": f"{own}:/usr/bin:/bin", "VIRTUAL_ENV": str(own.parent)}
    plant = '; (echo "#!/bin/sh" > "$(dirname "$(command -v rg)")/python3") 2>&1 | tail -n 1'
    server.add(Reply([rc(REPORT + plant)]), Reply([message("ok")]))
    r = coder("exec", "look around", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    got = seen(server)
    assert not got["PY"].startswith(str(own)) and not got["PIP"].startswith(str(own))
    assert not got["PREFIX"].startswith(str(own.parent))
    assert got["VENV"] == "unset" and str(own) not in got["PATH"].split(":")
    tools = Path(env["HOME"]) / ".local" / "lib" / "coder" / "bin"
    assert got["RG"] == str(tools / "rg") and got["RG_VERSION"].startswith("ripgrep 14")
    assert got["PATH"].split(":")[-1] == str(tools)  # last: the user's own tools come first
    output = server.bodies[-1]["input"][-1]["output"]
    assert "Read-only file system" in output or "Permission denied" in output  # commands cannot change it
    assert sorted(os.listdir(tools)) == ["rg"]


def test_a_venv_the_user_activated_for_the_project_stays_first(server, env, workspace: Path):
    project = workspace / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project)], check=True, timeout=60)
    (project / "bin" / "rg").write_text("#!/bin/sh\necho 'ripgrep 99 (the user own)'\n")
    (project / "bin" / "rg").chmod(0o755)
    env = {**env, "PATH": f"{project}/bin:{CODER.parent}:/usr/bin:/bin", "VIRTUAL_ENV": str(project)}
    server.add(Reply([rc(REPORT)]), Reply([message("ok")]))
    r = coder("exec", "run the tests", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    got = seen(server)
    assert got["PREFIX"] == str(project) and got["VENV"] == str(project)
    assert got["PATH"].split(":")[0] == f"{project}/bin" and str(CODER.parent) not in got["PATH"].split(":")
    assert got["RG"] == f"{project}/bin/rg"  # the user's own tools win over coder's
