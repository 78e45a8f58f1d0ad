"""Long sessions through the installed program: compaction recorded and resumed, recovery from an
overflow, one prompt cache key per session, and prefixes that stay byte-stable across resume and a
sandbox change. The installed `coder`, the scripted endpoint, real git."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import coder, write
from tests.scripted_server import Reply, call, message, reasoning, tokens_of

BIG = 8000


def big_files(workspace: Path, n: int) -> None:
    for i in range(n):
        (workspace / f"f{i}.txt").write_text(f"file {i}\n" + f"line {i} of padding text\n" * (BIG // 24))


def reads(n: int, start: int = 0) -> list[Reply]:
    return [Reply([reasoning(f"step {i}"), call("read_file", {"path": f"f{i}.txt"})]) for i in range(start, start + n)]


def configure(env: dict[str, str], text: str) -> None:
    path = Path(env["XDG_CONFIG_HOME"]) / "coder" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def records(env: dict[str, str]) -> list[dict]:
    [path] = list((Path(env["XDG_DATA_HOME"]) / "coder" / "sessions").glob("*/transcript.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def input_text(raw: bytes) -> str:
    """The `input` array of a request body, as the bytes that came over the wire."""
    text = raw.decode()
    return text[text.index('"input":[') + len('"input":'):text.rindex("]") + 1]


def test_one_cache_key_per_session_and_a_byte_stable_prefix_across_resume_and_a_sandbox_change(server, env, repo):
    server.add(Reply([call("list_dir", {"path": "."})]), Reply([message("one")]), Reply([message("two")]))
    first = coder("exec", "--json", "first", env=env, cwd=repo)
    assert first.returncode == 0, first.stderr
    session = json.loads(first.stdout.splitlines()[0])["session"]
    second = coder("exec", "--last", "--sandbox", "read-only", "second", env=env, cwd=repo)
    assert second.returncode == 0, second.stderr

    bodies = server.bodies
    assert {b["prompt_cache_key"] for b in bodies} == {session}
    assert {h["session_id"] for h in server.headers()} == {session}
    assert len({b["instructions"] for b in bodies}) == 1  # not rewritten for the new sandbox
    raw = [input_text(r) for r in server.raw_bodies]
    assert raw[2].startswith(raw[1][:-1])  # everything sent before, byte for byte, then what is new
    new = bodies[2]["input"][len(bodies[1]["input"]):]
    notes = [i for i in new if i.get("role") == "developer"]
    assert notes and "read-only" in notes[0]["content"][0]["text"]


def test_compaction_is_recorded_resume_replays_it_and_undo_reaches_across(server, env, repo):
    big_files(repo, 6)
    server.window = 14_000
    configure(env, "context_window = 14000\n")
    server.add(Reply([write("made.txt", "by the agent\n")]), Reply([message("wrote it")]))
    assert coder("exec", "write a file", env=env, cwd=repo).returncode == 0
    server.add(*reads(5), Reply([message("read them")]))
    r = coder("exec", "--last", "read the files", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "coder: note: context compacted by the endpoint" in r.stderr

    [compaction] = [rec for rec in records(env) if rec["type"] == "compaction"]
    assert compaction["strategy"] == "endpoint" and compaction["reason"] == "auto"
    after = compaction["items"]
    assert after[-1]["type"] == "compaction"

    server.add(Reply([message("third answer")]))
    r = coder("exec", "--last", "third", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    resumed = server.bodies[-1]["input"]
    assert resumed[: len(after)] == after  # resume replays the compacted history, verbatim
    assert all(tokens_of(b) <= 14_000 for b in server.bodies)

    assert (repo / "made.txt").exists()
    u = coder("undo", env=env, cwd=repo)
    assert u.returncode == 0, u.stdout + u.stderr
    assert not (repo / "made.txt").exists()  # the turn before the compaction, undone


def test_a_resumed_session_over_the_window_compacts_before_its_first_request(server, env, repo):
    big_files(repo, 4)
    server.add(*reads(4), Reply([message("read")]))
    assert coder("exec", "read the files", env=env, cwd=repo).returncode == 0
    before = len(server.requests)

    configure(env, "context_window = 9000\n")  # a smaller model now: the history is over its window
    server.window = 9_000
    server.add(Reply([message("went on")]))
    r = coder("exec", "--last", "go on", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    later = [x["path"] for x in server.requests[before:]]
    assert later == ["/v1/responses/compact", "/v1/responses"]  # compacted first: nothing refused
    assert r.stdout.strip() == "went on"


def test_exec_recovers_when_the_endpoint_refuses_the_size(server, env, repo):
    big_files(repo, 5)
    server.window = 11_000
    server.compact_status = 404  # and it has no compaction of its own
    server.add(*reads(4), Reply([message("NOTE: read f0-f3")]), *reads(1, start=4), Reply([message("all done")]))
    r = coder("exec", "-m", "house-model", "read all the files", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "all done"
    assert "over the model's context window" in r.stderr and "context compacted into a summary" in r.stderr
