"""Throughput of `coder batch` against the scripted endpoint on 127.0.0.1, at several --jobs.

Run with the Python of an environment where coder is installed:
    .venv/bin/python bench/batch.py [--targets 100] [--jobs 1 4 16] [--delay 0.2]

Each run is the installed `coder batch` as a subprocess, in a fresh temp workspace of N small files
with a fresh HOME/XDG, against a ScriptedServer (in this process) whose responder answers every
/responses request after `--delay` seconds: a target's first request gets a write_file (even targets)
or edit_file (odd targets) call on that target, the second (the call's output is the last item) gets
the final message. So a target takes 2 requests, and a perfect client needs
targets * 2 * delay / jobs seconds (the latency bound).

Prints, for each --jobs: wall time (process start to exit), the span the endpoint saw (first request
in to last request in, plus one delay), targets per second, speed-up over the first --jobs, the
client's CPU time per target (user+sys of the coder process tree, from RUSAGE_CHILDREN deltas) and
how busy the machine's cores were with it, the endpoint's own CPU, the most requests the endpoint had
in flight at once, the time to the first request, and each target's own seconds (its --json line).
Fails loudly if a target did not complete or its file did not change as asked.

--breakdown / --profile FILE: one more run at the last --jobs, with the parts of each target timed
(thread CPU and wall, no profiler), or with every thread under cProfile; to see where a plateau comes from.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CODER = Path(sys.executable).parent / "coder"

from tests.scripted_server import Reply, ScriptedServer, call, message  # noqa: E402

# `python -c PROFILE_CODE OUT coder-args...`: coder's main under cProfile in every thread (python -m cProfile
# sees the main thread only, and a batch's work is in its pool's threads), timed by each thread's own CPU
# (time.thread_time), so a thread waiting for the GIL or the endpoint costs nothing. Writes OUT (pstats, all
# threads merged) and OUT.json (the process's own CPU and its children's, threads profiled).
PROFILE_CODE = r"""
import cProfile, json, pstats, resource, sys, threading, time
out = sys.argv[1]
sys.argv = ["coder", *sys.argv[2:]]
profiles, lock = [], threading.Lock()
original_run = threading.Thread.run
def run(self):
    prof = cProfile.Profile(time.thread_time)
    prof.enable()
    try:
        original_run(self)
    finally:
        prof.disable()
        with lock:
            profiles.append(prof)
threading.Thread.run = run
main_prof = cProfile.Profile(time.thread_time)
t0 = time.monotonic()
main_prof.enable()
code = 1
try:
    from coder.cli import main
    code = main()
finally:
    main_prof.disable()
    wall = time.monotonic() - t0
    stats = pstats.Stats(main_prof)
    with lock:
        for prof in profiles:
            prof.create_stats()
            if prof.stats:
                stats.add(prof)
    stats.dump_stats(out)
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out + ".json", "w") as f:
        json.dump({"self_cpu": me.ru_utime + me.ru_stime, "children_cpu": kids.ru_utime + kids.ru_stime,
                   "wall": wall, "threads": len(profiles) + 1, "context_switches": me.ru_nvcsw + me.ru_nivcsw}, f)
sys.exit(code)
"""

# `python -c BREAKDOWN_CODE OUT coder-args...`: coder's main with the parts of a target's life timed (no
# profiler, so pure-Python code is not slowed more than C): each part's calls, its CPU (time.thread_time of the
# thread running it: what it costs under the GIL) and wall time (with the waits for the GIL and the endpoint).
# Parts nest (the openai client is built inside the first request, inside run_task). Writes OUT (JSON).
BREAKDOWN_CODE = r"""
import json, ssl, sys, threading, time
out = sys.argv[1]
sys.argv = ["coder", *sys.argv[2:]]
parts, lock = {}, threading.Lock()
def timed(name, fn):
    def wrapper(*a, **k):
        c, w = time.thread_time(), time.monotonic()
        try:
            return fn(*a, **k)
        finally:
            dc, dw = time.thread_time() - c, time.monotonic() - w
            with lock:
                p = parts.setdefault(name, [0, 0.0, 0.0])
                p[0] += 1; p[1] += dc; p[2] += dw
    return wrapper
from coder import agent, client, sessions
from coder.batching import runner, state
runner.Batch._one = timed("Batch._one (a whole target)", runner.Batch._one)
agent.Agent.__init__ = timed("Agent.__init__", agent.Agent.__init__)
agent.Agent.close = timed("Agent.close", agent.Agent.close)
sessions.Session.create = classmethod(timed("Session.create", sessions.Session.create.__func__))
sessions.Session.run_task = timed("Session.run_task", sessions.Session.run_task)
sessions.Session.close = timed("Session.close", sessions.Session.close)
state.State.record = timed("State.record (rewrites the state file)", state.State.record)
client.ResponsesClient.openai = property(timed("ResponsesClient.openai (first: builds the client)",
                                               client.ResponsesClient.openai.fget))
ssl.SSLContext.load_verify_locations = timed("ssl load_verify_locations (CA bundle)",
                                             ssl.SSLContext.load_verify_locations)
from coder.tools import base
base.ToolContext.before_write = timed("ToolContext.before_write (checkpoint)", base.ToolContext.before_write)
t0, c0 = time.monotonic(), time.process_time()
code = 1
try:
    from coder.cli import main
    code = main()
finally:
    with open(out, "w") as f:
        json.dump({"parts": parts, "wall": time.monotonic() - t0, "cpu": time.process_time() - c0}, f)
sys.exit(code)
"""

PROMPT = "Add the marker line to {file} as the project's convention says.\n"
ORIGINAL = "def f{i}(x):\n    return x + {i}\n"


def target_name(i: int) -> str:
    return f"pkg{i % 10}/mod{i:03d}.py"


def expected(i: int) -> str:
    if i % 2 == 0:  # write_file: the whole file
        return f"# bench marker {i}\n" + ORIGINAL.format(i=i)
    return ORIGINAL.format(i=i).replace("return x", "return -x")  # edit_file


class Endpoint:
    """A ScriptedServer answering any number of batch sessions, each request after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.srv = ScriptedServer()
        self.srv.responder = self.respond
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.arrivals: list[float] = []

    def reset(self) -> None:
        with self.lock:
            self.peak = 0
            self.arrivals = []

    def respond(self, body: dict) -> Reply:
        with self.lock:
            self.arrivals.append(time.monotonic())
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            items = body["input"]
            text = " ".join(c.get("text", "") if isinstance(c, dict) else str(c)
                            for i in items if i.get("type") == "message" and i.get("role") == "user"
                            for c in (i["content"] if isinstance(i["content"], list) else [i["content"]]))
            path = next(w for w in text.split() if w.startswith("pkg") and w.endswith(".py"))
            i = int(path.rsplit("mod", 1)[1][:3])
            if items[-1].get("type") == "function_call_output":
                return Reply([message(f"Done with {path}.")], delay=self.delay)
            if i % 2 == 0:
                return Reply([call("write_file", {"path": path, "content": expected(i)})], delay=self.delay)
            return Reply([call("edit_file", {"path": path, "old_string": "return x", "new_string": "return -x",
                                             "replace_all": None})], delay=self.delay)
        finally:
            # the reply's delay is slept after this returns: count the request as in flight until then
            threading.Timer(self.delay, self._done).start()

    def _done(self) -> None:
        with self.lock:
            self.in_flight -= 1


def make_workspace(root: Path, targets: int) -> tuple[Path, dict[str, str]]:
    home = root / "home"
    (home / ".config").mkdir(parents=True)
    project = home / "project"
    for i in range(targets):
        path = project / target_name(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ORIGINAL.format(i=i))
    (project / "task.md").write_text(PROMPT)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".data"),
        "XDG_STATE_HOME": str(home / ".state"),
        "OPENAI_API_KEY": "sk-bench",
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return project, env


def run_batch(endpoint: Endpoint, targets: int, jobs: int, extra: list[str] | None = None,
              program: list[str] | None = None, keep: Path | None = None) -> dict:
    """One `coder batch` run in a fresh workspace; its figures. Raises SystemExit if any target fell short.

    `program` replaces the installed coder (e.g. [python, -m, cProfile, -o, FILE, coder]); `keep` gets
    coder's stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        project, env = make_workspace(Path(tmp), targets)
        env["OPENAI_BASE_URL"] = endpoint.srv.base_url
        endpoint.reset()
        cmd = [*(program or [str(CODER)]), "batch", "task.md", "--files", "pkg*/*.py", "--jobs", str(jobs),
               "--json", *(extra or [])]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = time.process_time()  # this process: the endpoint's threads
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=env, cwd=project, capture_output=True, text=True, timeout=600)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        endpoint_cpu = time.process_time() - own
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if keep is not None:
            keep.write_text(proc.stderr)
        lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        problems = []
        if proc.returncode != 0:
            problems.append(f"exit code {proc.returncode}")
        by_target = {r["target"]: r for r in lines}
        for i in range(targets):
            name = target_name(i)
            r = by_target.get(name)
            if r is None:
                problems.append(f"{name}: no result line")
                continue
            if r["status"] != "completed":
                problems.append(f"{name}: {r['status']} ({r.get('error')})")
            if r["files_changed"] != [name]:
                problems.append(f"{name}: files_changed {r['files_changed']}")
            text = (project / name).read_text()
            if text != expected(i):
                problems.append(f"{name}: contents {text!r}")
        if len(lines) != targets:
            problems.append(f"{len(lines)} result lines for {targets} targets")
        requests = len(endpoint.arrivals)
        if requests != 2 * targets:
            problems.append(f"{requests} requests reached the endpoint, {2 * targets} expected")
        if problems:
            sys.stderr.write(proc.stderr[-3000:])
            raise SystemExit(f"--jobs {jobs}: the batch fell short:\n  " + "\n  ".join(problems[:20]))
        arrivals = sorted(endpoint.arrivals)
        return {
            "jobs": jobs, "wall": wall, "cpu": cpu, "peak": endpoint.peak, "endpoint_cpu": endpoint_cpu,
            "span": arrivals[-1] - arrivals[0] + endpoint.delay,
            "first": arrivals[0] - t0,
            "seconds": sorted(r["seconds"] for r in lines),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the endpoint takes per request")
    parser.add_argument("--profile", metavar="FILE", help="then run once more at the last --jobs with every thread "
                        "under cProfile (thread CPU time): write the merged pstats to FILE and print the top")
    parser.add_argument("--breakdown", action="store_true", help="then run once more at the last --jobs with the "
                        "parts of each target timed (CPU and wall), and print them")
    parser.add_argument("--sandbox", help="pass --sandbox MODE to coder batch (default: coder's own default)")
    args = parser.parse_args()
    if not CODER.exists():
        sys.exit(f"coder is not installed next to {sys.executable}")
    print(f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), Python {sys.version.split()[0]}")
    print(f"batch: {args.targets} targets, 2 requests each, endpoint delay {args.delay * 1000:.0f} ms per request",
          flush=True)
    extra = ["--sandbox", args.sandbox] if args.sandbox else []
    endpoint = Endpoint(args.delay)
    rows = []
    try:
        for jobs in args.jobs:
            rows.append(run_batch(endpoint, args.targets, jobs, extra))
        if args.profile:
            out = Path(args.profile).absolute()
            prof = run_batch(endpoint, args.targets, args.jobs[-1], extra,
                             program=[sys.executable, "-c", PROFILE_CODE, str(out)])
        if args.breakdown:
            with tempfile.TemporaryDirectory() as tmp:
                parts = run_batch(endpoint, args.targets, args.jobs[-1], extra,
                                  program=[sys.executable, "-c", BREAKDOWN_CODE, str(Path(tmp) / "out.json")])
                breakdown = json.loads((Path(tmp) / "out.json").read_text())
    finally:
        endpoint.srv.close()
    base = rows[0]
    print(f"{'jobs':>5} {'wall s':>7} {'span s':>7} {'bound s':>8} {'targets/s':>10} {'speed-up':>9} "
          f"{'CPU/target':>11} {'cores busy':>11} {'endpoint CPU':>13} {'in flight':>10} {'to 1st req':>11} {'target s p50/max':>17}")
    for r in rows:
        bound = args.targets * 2 * args.delay / r["jobs"]
        secs = r["seconds"]
        print(f"{r['jobs']:>5} {r['wall']:>7.2f} {r['span']:>7.2f} {bound:>8.2f} {args.targets / r['wall']:>10.2f} "
              f"{base['wall'] / r['wall']:>8.2f}x {r['cpu'] / args.targets * 1000:>8.0f} ms "
              f"{r['cpu'] / r['wall']:>11.2f} {r['endpoint_cpu']:>11.2f} s {r['peak']:>10} {r['first']:>9.2f} s "
              f"{secs[len(secs) // 2]:>8.2f}/{secs[-1]:.2f}")
    print("wall: process start to exit; span: first request in to last request answered; bound: targets*2*delay/jobs;")
    print("CPU/target: user+sys of the coder process tree / targets; cores busy: that CPU / wall;")
    print("endpoint CPU: this process's CPU during the run (the scripted endpoint's threads);")
    print("in flight: most requests the endpoint held at once; target s: each target's own seconds (--json)")
    if args.breakdown:
        print_breakdown(breakdown, parts, args.targets)
    if args.profile:
        print_profile(out, prof, args.targets)


def print_breakdown(data: dict, run: dict, targets: int) -> None:
    print(f"\nbreakdown (--jobs {run['jobs']}, {targets} targets, wall {run['wall']:.2f} s): coder's own CPU "
          f"{data['cpu']:.2f} s = {data['cpu'] / data['wall']:.2f} of one core over {data['wall']:.2f} s")
    print(f"  {'part':52} {'calls':>6} {'CPU ms/target':>14} {'CPU ms/call':>12} {'wall ms/call':>13} {'CPU share':>10}")
    for name, (calls, cpu, wall) in sorted(data["parts"].items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:52} {calls:>6} {cpu / targets * 1000:>14.1f} {cpu / calls * 1000:>12.2f} "
              f"{wall / calls * 1000:>13.1f} {cpu / data['cpu']:>10.0%}")


def print_profile(out: Path, run: dict, targets: int) -> None:
    import pstats

    facts = json.loads(Path(str(out) + ".json").read_text())
    print(f"\nprofile (--jobs {run['jobs']}, every thread, thread CPU time; wall {run['wall']:.2f} s under the "
          f"profiler): coder's own CPU {facts['self_cpu']:.2f} s ({facts['self_cpu'] / facts['wall']:.2f} of one "
          f"core over its {facts['wall']:.2f} s), its child processes {facts['children_cpu']:.2f} s, "
          f"{facts['threads']} threads; pstats in {out}")
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()
