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


def test_coders_own_venv_stays_when_the_user_activated_it(server, env, workspace: Path):
    """coder pip-installed into the project's own venv, activated: `python3 -m pytest` must find it."""
    own = CODER.parent
    env = {**env, "PATH": f"{own}:/usr/bin:/bin", "VIRTUAL_ENV": str(own.parent)}
    tools = Path(env["HOME"]) / ".local" / "lib" / "coder" / "bin"
    plant = (f"; python3 -c 'import pytest' && echo PYTEST=yes"
             f'; (echo "#!/bin/sh" > "{tools}/python3") 2>&1 | tail -n 1')
    server.add(Reply([rc(REPORT + plant)]), Reply([message("ok")]))
    r = coder("exec", "run the tests", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    got = seen(server)
    assert got["PY"] == f"{own}/python3" and got["PREFIX"] == str(own.parent) and got["PYTEST"] == "yes"
    assert got["VENV"] == str(own.parent)
    assert got["PATH"].split(":") == [str(own), "/usr/bin", "/bin", str(tools)]  # as the user put it, rg last
    output = server.bodies[-1]["input"][-1]["output"]
    assert "Read-only file system" in output or "Permission denied" in output  # commands cannot change it
    assert sorted(os.listdir(tools)) == ["rg"]


def test_coders_own_venv_leaves_path_when_it_got_there_unactivated(server, env, workspace: Path):
    own = CODER.parent
    env = {**env, "PATH": f"/usr/local/bin:{own}:/usr/bin:/bin"}
    server.add(Reply([rc(REPORT)]), Reply([message("ok")]))
    r = coder("exec", "look around", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    got = seen(server)
    assert not got["PY"].startswith(str(own)) and not got["PIP"].startswith(str(own))
    assert not got["PREFIX"].startswith(str(own.parent)) and got["VENV"] == "unset"
    tools = Path(env["HOME"]) / ".local" / "lib" / "coder" / "bin"
    assert got["PATH"].split(":") == ["/usr/local/bin", "/usr/bin", "/bin", str(tools)]
    assert got["RG"] == str(tools / "rg") and got["RG_VERSION"].startswith("ripgrep 14")


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


# The tools folder (~/.local/lib/coder/bin): coder mends it at each start, and must never reach past it.
def _victim(home: Path) -> Path:
    victim = home / "projects" / "scripts"
    (victim / "sub").mkdir(parents=True)
    (victim / "deploy.sh").write_text("important\n")
    (victim / "sub" / "x").write_text("y")
    return victim


def _untouched(victim: Path) -> bool:
    return sorted(os.listdir(victim)) == ["deploy.sh", "sub"] and (victim / "sub" / "x").read_text() == "y"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_tools_folder_is_made_and_mended(home: Path):
    from coder import dirs

    tools = dirs.tools_dir()
    assert dirs.provide_tools({"rg": "/usr/bin/true"}) == tools
    assert os.readlink(tools / "rg") == "/usr/bin/true" and tools.stat().st_mode & 0o777 == 0o755
    (tools / "old").symlink_to("/usr/bin/false")  # a link an older coder made: goes
    (tools / "rg").unlink()
    (tools / "rg").symlink_to("/somewhere/else")
    assert dirs.provide_tools({"rg": "/usr/bin/true"}) == tools
    assert sorted(os.listdir(tools)) == ["rg"] and os.readlink(tools / "rg") == "/usr/bin/true"


@pytest.mark.parametrize("linked", ["bin", "coder"])
def test_a_symlinked_tools_folder_is_left_alone(home: Path, linked: str):
    from coder import dirs

    victim = _victim(home)
    place = dirs.tools_dir() if linked == "bin" else dirs.lib_dir()
    place.parent.mkdir(parents=True)
    place.symlink_to(victim)
    with pytest.raises(dirs.ToolsRefused, match="symbolic link"):
        dirs.provide_tools({"rg": "/usr/bin/true"})
    assert _untouched(victim) and place.is_symlink()


@pytest.mark.parametrize("what", ["file", "folder", "fifo", "rg-file"])
def test_what_coder_did_not_put_in_the_tools_folder_is_not_removed(home: Path, what: str):
    from coder import dirs

    tools = dirs.tools_dir()
    tools.mkdir(parents=True)
    planted = tools / ("rg" if what == "rg-file" else "python3")
    if what == "folder":
        planted.mkdir()
        (planted / "keep").write_text("x")
    elif what == "fifo":
        os.mkfifo(planted)
    else:
        planted.write_text("#!/bin/sh\n")
    with pytest.raises(dirs.ToolsRefused, match="coder did not put there"):
        dirs.provide_tools({"rg": "/usr/bin/true"})
    assert os.path.lexists(planted) and not planted.is_symlink()
    if what == "folder":
        assert (planted / "keep").exists()


@pytest.mark.parametrize("where", ["coder", "bin"])
def test_a_tools_folder_others_may_write_is_refused(home: Path, where: str):
    from coder import dirs

    tools = dirs.tools_dir()
    tools.mkdir(parents=True)
    (tools if where == "bin" else tools.parent).chmod(0o777)
    with pytest.raises(dirs.ToolsRefused, match="writable by others"):
        dirs.provide_tools({"rg": "/usr/bin/true"})
    assert os.listdir(tools) == []


def test_coder_leaves_a_planted_link_alone_and_says_so_once(server, env, workspace: Path):
    home = Path(env["HOME"])
    victim = _victim(home)
    lib = home / ".local" / "lib" / "coder"
    lib.mkdir(parents=True)
    (lib / "bin").symlink_to(victim)
    server.add(Reply([rc("echo PATH=$PATH; echo RG=$(command -v rg || echo none)")]), Reply([message("ok")]))
    r = coder("exec", "look around", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert _untouched(victim)
    got = seen(server)
    assert got["PATH"] == "/usr/bin:/bin" and got["RG"] in ("none", "/usr/bin/rg")  # no tools folder at all
    warnings = [line for line in r.stderr.splitlines() if "symbolic link" in line]
    assert len(warnings) == 1 and warnings[0].startswith("coder: warning: ") and str(lib / "bin") in warnings[0]


# install.sh: never replaces what is not its own, and a failed upgrade leaves the previous install working.
def _install(home: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    env.update(HOME=str(home), PATH="/usr/bin:/bin", LANG="C.UTF-8", CODER_INSTALLER="venv", PYTHON=sys.executable)
    env.update(extra)
    return subprocess.run(["sh", str(ROOT / "install.sh")], env=env, capture_output=True, text=True, timeout=300)


OFFLINE = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}  # pip cannot get the build backend: the install fails


def _foreign_coder(home: Path) -> Path:
    other = home / ".local" / "bin" / "coder"
    other.parent.mkdir(parents=True)
    other.write_text("#!/bin/sh\necho another program\n")
    other.chmod(0o755)
    return other


def test_install_refuses_to_replace_another_programs_coder(tmp_path: Path):
    home = tmp_path / "home"
    other = _foreign_coder(home)
    r = _install(home)
    assert r.returncode != 0 and "CODER_FORCE=1" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert other.read_text() == "#!/bin/sh\necho another program\n"
    assert not (home / ".local" / "lib" / "coder").exists()  # refused before doing anything


def test_install_with_coder_force_goes_on_but_replaces_nothing_until_it_works(tmp_path: Path):
    home = tmp_path / "home"
    other = _foreign_coder(home)
    r = _install(home, CODER_FORCE="1", **OFFLINE)
    assert r.returncode != 0 and "CODER_FORCE" not in r.stderr and "pip install failed" in r.stderr, r.stderr
    assert other.read_text() == "#!/bin/sh\necho another program\n" and not other.is_symlink()
    assert not (home / ".local" / "lib" / "coder" / "venv").exists()  # the half-made venv is gone


def test_a_failed_upgrade_leaves_the_previous_install_working(installed):  # keep last: it reuses the install
    home, _ = installed
    lib = home / ".local" / "lib" / "coder"
    link = home / ".local" / "bin" / "coder"
    before = os.readlink(link)
    r = _install(home, **OFFLINE)
    assert r.returncode != 0 and "pip install failed" in r.stderr, r.stderr
    assert "kept the previous installation" in r.stderr
    assert os.readlink(link) == before
    version = subprocess.run([str(link), "--version"], env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
                             capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and version.stdout.startswith("coder "), version.stderr
    assert not [n for n in os.listdir(lib) if n.startswith("venv.")]  # nothing left aside
