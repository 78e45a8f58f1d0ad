"""Long-session figures: client CPU per turn as the history grows, cache friendliness, and a session far
longer than the model's window, all against the scripted endpoint on 127.0.0.1.

Run with the Python of an environment where coder is installed:
    .venv/bin/python bench/context.py [--turns 200] [--long 300]

Prints:
- the client's CPU time per turn at turns 10, 100 and 200 of a session whose every tool output is 8 KB
  (the endpoint runs in another process, so its work is not counted);
- the share of each request that the next one repeats byte for byte (instructions, tools, input), over
  50 requests with a follow-up, a sandbox change and a resume, compaction points aside;
- a 300-turn session with 40 KB tool outputs and a 60k-token window, once with the endpoint's compaction
  and once with local summaries: whether it finishes, the largest request against the window, and how
  often it compacted and shrank old outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-0000000000")

SERVER = r"""
import sys, time
from tests.scripted_server import Reply, ScriptedServer, call, message, reasoning
turns = int(sys.argv[1])
srv = ScriptedServer()
blob = "gAAAA" + "x" * 2000
for i in range(turns - 1):
    srv.add(Reply([reasoning("step %d" % i, encrypted=blob + str(i)), message("Step %d." % i),
                   call("read_file", {"path": "data.txt", "offset": None, "limit": None})]))
srv.add(Reply([message("All done.")]))
print(srv.base_url, flush=True)
sys.stdin.read()
"""


def cpu_per_turn(turns: int) -> None:
    from coder.agent import Agent
    from coder.config import Config

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "data.txt").write_text("".join(f"{i:5d} some file content on this line, padded to fit\n"
                                             for i in range(8192 // 56)))
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(turns)], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        url = proc.stdout.readline().strip()
        os.environ["XDG_STATE_HOME"] = str(ws / ".state")
        agent = Agent(Config(base_url=url, max_turns=turns + 1, context_window=10_000_000), ws)
        per_turn: list[float] = []
        mark = time.process_time()
        for event in agent.run("Work through the steps."):
            if event.type == "request.started":
                now = time.process_time()
                per_turn.append(now - mark)
                mark = now
        proc.stdin.close()
        proc.wait()
        output = next(i["output"] for i in agent.conversation.items if i.get("type") == "function_call_output")
        agent.close()
    print(f"client CPU per turn, {turns} turns of {len(output) / 1024:.1f} KB outputs "
          f"(final input {len(json.dumps(agent.conversation.items)) / 1e6:.2f} MB):")
    for at in (10, 100, 200):
        if at <= len(per_turn):
            window = per_turn[max(2, at - 5):at]
            print(f"  turn {at:>3}  {statistics.median(window) * 1000:.2f} ms")


def cache_friendliness() -> None:
    from coder.agent import Agent
    from coder.config import Config
    from coder.sessions import Session
    from sandbox.policy import Mode
    from tests.scripted_server import Reply, ScriptedServer, call, message, prefix_shares, reasoning

    srv = ScriptedServer()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        subprocess.run(["git", "init", "-q", str(ws)], check=True)
        (ws / "a.txt").write_text("some content\n" * 50)
        os.environ.update(XDG_DATA_HOME=f"{tmp}/data", XDG_STATE_HOME=f"{tmp}/state")
        config = Config(base_url=srv.base_url)

        def turn(session: Session, prompt: str, calls: int) -> None:
            for i in range(calls):
                srv.add(Reply([reasoning(f"r{i}"), call("read_file", {"path": "a.txt"})]))
            srv.add(Reply([message(f"answered {prompt}")]))
            for event in session.run(prompt):
                assert event.type != "error", event

        session = Session.create(Agent(config, ws))
        turn(session, "first", 12)
        turn(session, "a follow-up", 12)
        session.agent.set_sandbox(Mode.READ_ONLY)
        session.settings_changed()
        turn(session, "after the sandbox change", 11)
        directory = session.directory
        session.close()
        resumed = Session.resume(config, directory)
        turn(resumed, "after the resume", 11)
        resumed.close()
    srv.close()
    shares = prefix_shares(srv.raw_bodies)
    print(f"cache friendliness over {len(srv.raw_bodies)} requests (a follow-up, a sandbox change, a resume): "
          f"each request repeats {min(shares):.1%} (min) / {statistics.mean(shares):.2%} (mean) of the one before")


def long_session(turns: int, strategy: str) -> None:
    from coder.agent import Agent
    from coder.config import Config
    from tests.scripted_server import Reply, ScriptedServer, call, message, reasoning, tokens_of

    srv = ScriptedServer()
    srv.window = 60_000
    if strategy == "local":
        srv.compact_status = 404
    counter = {"calls": 0, "largest": 0}

    def step(body: dict) -> Reply:
        counter["largest"] = max(counter["largest"], tokens_of(body))
        if body.get("tool_choice") == "none":  # a local compaction's summary request
            return Reply([message("NOTE: reading data.txt again and again; keep going.")])
        counter["calls"] += 1
        if counter["calls"] >= turns:
            return Reply([message("All done.")])
        return Reply([reasoning(f"step {counter['calls']}"), call("read_file", {"path": "data.txt"})])

    srv.script = [step] * (turns * 3)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "data.txt").write_text("".join(f"{i:5d} " + "x" * 33 + "\n" for i in range(40 * 1024 // 40)))
        os.environ["XDG_STATE_HOME"] = str(ws / ".state")
        agent = Agent(Config(base_url=srv.base_url, context_window=60_000, max_turns=turns * 2,
                             compaction=strategy), ws)
        t = time.perf_counter()
        events = list(agent.run("Read data.txt again and again."))
        wall = time.perf_counter() - t
        agent.close()
    srv.close()
    done = events[-1]
    compactions = [e for e in events if e.type == "context.compacted"]
    shrinks = [e for e in events if e.type == "context.shrunk"]
    refused = len(srv.bodies) - len(srv.inputs)
    largest = counter["largest"]
    print(f"{turns}-turn session, 40 KB outputs, 60k window, compaction={strategy}: {done.status} after "
          f"{counter['calls']} tool calls in {wall:.1f} s; {len(compactions)} compactions, {len(shrinks)} shrinks, "
          f"{refused} requests refused for size; largest request {largest:,} tokens, final request {tokens_of(srv.bodies[-1]):,}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--long", type=int, default=300)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    cpu_per_turn(args.turns)
    cache_friendliness()
    for strategy in ("endpoint", "local"):
        long_session(args.long, strategy)


if __name__ == "__main__":
    main()
