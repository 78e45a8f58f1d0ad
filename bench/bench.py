"""Start-up and per-turn figures for coder, against the scripted endpoint on 127.0.0.1.

Run with the Python of an environment where coder is installed:
    .venv/bin/python bench/bench.py [--turns 200] [--runs 10]

Prints:
- `coder --version` wall time (median of runs);
- `coder exec` time from process start to its first request reaching the endpoint;
- a long scripted session run in-process (the endpoint in another process): total
  wall time, the client's own CPU time per turn (building, serializing, parsing the
  stream, running the tool), early vs late turns to show it does not grow faster
  than the history, and what the openai client's request transform would have cost
  on the final history had we passed `input` through it.
"""

from __future__ import annotations

import argparse
import json
import re
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CODER = Path(sys.executable).parent / "coder"

SERVER_CODE = r"""
import json, sys, time
from tests.scripted_server import Reply, ScriptedServer, call, message, reasoning
turns = int(sys.argv[1])
srv = ScriptedServer()
blob = "gAAAA" + "x" * 2000
for i in range(turns - 1):
    srv.add(Reply([reasoning("thinking about step %d" % i, encrypted=blob + str(i)),
                   message("Step %d: reading the file." % i),
                   call("read_file", {"path": "data.txt", "offset": None, "limit": None})]))
srv.add(Reply([message("All done.")]))
print(srv.base_url, flush=True)
stamps = []
def watch():
    seen = 0
    while True:
        time.sleep(0.002)
        if len(srv.requests) > seen:
            seen = len(srv.requests)
            print("REQ", time.time(), flush=True)
import threading; threading.Thread(target=watch, daemon=True).start()
sys.stdin.read()
"""


def start_server(turns: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_CODE, str(turns)], cwd=ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )
    return proc, proc.stdout.readline().strip()


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})"


def bench_version(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([str(CODER), "--version"], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return times


def project_in(home: Path) -> Path:
    """A project folder inside a scratch home (coder does not take the home folder itself as its workspace)."""
    project = home / "project"
    project.mkdir(exist_ok=True)
    return project


def bench_exec_to_endpoint(runs: int, workspace: Path) -> list[float]:
    times = []
    for _ in range(runs):
        proc, url = start_server(1)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(workspace), "OPENAI_API_KEY": "sk-bench",
               "OPENAI_BASE_URL": url}
        t0 = time.time()
        subprocess.run([str(CODER), "exec", "hi"], env=env, cwd=project_in(workspace), capture_output=True,
                       check=True)
        line = proc.stdout.readline()
        proc.stdin.close()
        proc.wait()
        times.append(float(line.split()[1]) - t0)
    return times


def bench_repl_first_paint(runs: int, workspace: Path) -> list[float]:
    """From spawning `coder` in a pseudo-terminal to its prompt being drawn (the toolbar appears with it)."""
    import pty
    import select

    project = project_in(workspace)
    state = workspace / ".state"
    (state / "coder").mkdir(parents=True, exist_ok=True)
    (state / "coder" / "trust.json").write_text(json.dumps({"folders": {str(project.resolve()): True}}))
    times = []
    for _ in range(runs):
        env = {"PATH": "/usr/bin:/bin", "HOME": str(workspace), "OPENAI_API_KEY": "sk-bench", "TERM": "xterm",
               "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "XDG_STATE_HOME": str(state)}
        t0 = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(project)
            os.execve(str(CODER), [str(CODER)], env)
        seen = b""
        while not re.search(rb"context [0-9,]+ tokens", seen):
            ready, _, _ = select.select([fd], [], [], 10)
            if not ready:
                raise SystemExit("the REPL never drew its prompt")
            chunk = os.read(fd, 65536)
            if b"\x1b[6n" in chunk:  # answer the cursor-position query like a terminal
                os.write(fd, b"\x1b[1;1R")
            seen += chunk
        times.append(time.perf_counter() - t0)
        os.write(fd, b"\x04")  # Ctrl-D
        os.waitpid(pid, 0)
        os.close(fd)
    return times


def bench_session(turns: int, workspace: Path, recorded: bool = False) -> None:
    """A long scripted session; `recorded` runs it as a Session (transcript + checkpoints) in a git repo."""
    from coder.agent import Agent
    from coder.config import Config

    (workspace / "data.txt").write_text("".join(f"line {i}: some file content here\n" for i in range(60)))
    proc, url = start_server(turns)
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    agent = Agent(Config(base_url=url, model="gpt-5.3-codex", max_turns=turns + 1), workspace)
    run = agent.run
    if recorded:
        from coder.sessions import Session

        os.environ["XDG_DATA_HOME"] = str(workspace / ".data")
        run = Session.create(agent).run
    per_turn_cpu: list[float] = []
    wall0 = time.perf_counter()
    cpu_mark = time.process_time()
    status = ""
    for event in run("Work through the steps."):
        if event.type == "turn.done":
            status = event.status
        if event.type == "request.started":
            now = time.process_time()
            per_turn_cpu.append(now - cpu_mark)
            cpu_mark = now
    per_turn_cpu.append(time.process_time() - cpu_mark)
    wall = time.perf_counter() - wall0
    proc.stdin.close()
    proc.wait()
    per_turn_cpu = per_turn_cpu[2:]  # skip start-up (client import) and the first request
    body = agent.client.request_body(agent.conversation.items, agent.tools, agent.instructions)
    size = len(json.dumps(body))

    from openai._utils import maybe_transform
    from openai.types.responses import response_create_params

    t = time.perf_counter()
    maybe_transform(body, response_create_params.ResponseCreateParamsStreaming)
    transform = time.perf_counter() - t
    agent.close()

    k = max(1, len(per_turn_cpu) // 10)
    assert status == "completed", status
    kind = "recorded session (transcript + checkpoints)" if recorded else "session"
    print(f"{kind}: {turns} turns, final request {size / 1e6:.2f} MB, {len(agent.conversation.items)} items")
    print(f"  total wall time           {wall:.2f} s ({wall / turns * 1000:.1f} ms per turn, endpoint included)")
    print(f"  client CPU per turn       median {statistics.median(per_turn_cpu) * 1000:.2f} ms, "
          f"total {sum(per_turn_cpu):.2f} s ({sum(per_turn_cpu) / wall:.0%} of wall time)")
    print(f"  first {k} turns           {statistics.mean(per_turn_cpu[:k]) * 1000:.2f} ms per turn")
    print(f"  last {k} turns            {statistics.mean(per_turn_cpu[-k:]) * 1000:.2f} ms per turn")
    print(f"  openai transform avoided  {transform * 1000:.1f} ms for the final history alone (per request)")


CONNECTS = """
import socket, time
l = socket.socket(socket.AF_UNIX); l.bind("b.sock"); l.listen(1024)
t = time.perf_counter()
for _ in range(500):
    c = socket.socket(socket.AF_UNIX); c.connect("b.sock"); l.accept()[0].close(); c.close()
print((time.perf_counter() - t) / 500 * 1e6)
"""


def bench_command_overhead(runs: int, workspace: Path) -> None:
    """Wall time of run_command("true") on each backend, and of one Unix-socket connect() inside it."""
    from coder.tools.base import ToolContext
    from coder.tools.run_command import TOOL
    from sandbox import backends
    from sandbox.policy import Mode, Policy

    env = {"PATH": "/usr/bin:/bin"}
    (workspace / "connects.py").write_text(CONNECTS)
    choices = [(Mode.FULL_ACCESS, None)] + [(Mode.WORKSPACE_WRITE, b) for b in ("landlock", "bwrap")]
    for mode, name in choices:
        backend = backends.get(name) if name else None
        if name and backend is None:
            print(f"run_command true [{name:11}] backend not available")
            continue
        ctx = ToolContext(policy=Policy.for_workspace(workspace, mode), env=env, backend=backend)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            out = TOOL.run(ctx, {"command": "true", "timeout_seconds": None, "workdir": None})
            times.append(time.perf_counter() - t)
            assert out.exit_code == 0, out.text
        out = TOOL.run(ctx, {"command": "python3 connects.py; rm -f b.sock", "timeout_seconds": None, "workdir": None})
        per_connect = float(out.text.split("Output:")[1].split()[0])
        print(f"run_command true [{ctx.backend.name:11}] {median_ms(times)}; "
              f"Unix connect() {per_connect:.0f} us")


def bench_checkpoints(workspace: Path, files: int = 2000, runs: int = 7) -> None:
    """What recording a turn for undo costs in a git repo of `files` files: a turn with one file-tool
    write, and the two snapshots that bracket each command."""
    from coder.checkpoints import Checkpoints

    repo = workspace / "repo"
    for i in range(files):
        (repo / f"pkg{i % 40}").mkdir(parents=True, exist_ok=True)
        (repo / f"pkg{i % 40}" / f"mod{i}.py").write_text(f"x = {i}\n" * 20)
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["add", "."], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "base"], cwd=repo, check=True)
    time.sleep(0.2)  # older than a timestamp tick: the stat cache may trust them
    cp = Checkpoints(repo, "bench", workspace / "store")
    writes: list[float] = []
    per_command: dict[int, list[float]] = {1: [], 10: []}
    for i in range(runs):
        target = repo / "pkg0" / "mod0.py"
        t = time.perf_counter()
        cp.begin_turn(f"turn {i}")
        cp.before_write(target, f"changed {i}\n".encode())
        target.write_text(f"changed {i}\n")
        cp.after_write(target)
        cp.end_turn()
        writes.append(time.perf_counter() - t)
        for n, times in per_command.items():
            # What the turn waits for: the snapshot before each command, and at its end what is still
            # running on the side thread (each after-snapshot overlaps the model's next reply, here 30 ms).
            waited = 0.0
            cp.begin_turn(f"{n} commands {i}")
            for k in range(n):
                t = time.perf_counter()
                cp.before_command()
                waited += time.perf_counter() - t
                (repo / "pkg1" / f"mod{k}.py").write_text(f"by a command {i}\n")
                t = time.perf_counter()
                cp.after_command()
                waited += time.perf_counter() - t
                time.sleep(0.03)
            t = time.perf_counter()
            cp.end_turn()
            times.append(waited + time.perf_counter() - t)
    print(f"undo record, turn with one write ({files} files, git)   {median_ms(writes[1:])}")
    for n, times in per_command.items():
        print(f"undo record, turn with {n:>2} command(s) ({files} files)  {median_ms(times[1:])} waited"
              f"{' (first: every file read once)' if n == 1 else ''}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if not CODER.exists():
        sys.exit(f"coder is not installed next to {sys.executable}")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        print(f"coder --version             {median_ms(bench_version(args.runs))}")
        print(f"coder exec -> endpoint      {median_ms(bench_exec_to_endpoint(args.runs, ws))}")
        print(f"coder (REPL) -> prompt      {median_ms(bench_repl_first_paint(args.runs, ws))}")
        bench_command_overhead(args.runs * 2, ws)
        bench_checkpoints(ws)
    with tempfile.TemporaryDirectory() as tmp:
        bench_session(args.turns, Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["git", "init", "-q", tmp], check=True)
        bench_session(args.turns, Path(tmp), recorded=True)


if __name__ == "__main__":
    main()
