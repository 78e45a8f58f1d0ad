"""Sessions through the installed program: transcripts, resume, undo, auto-commit, AGENTS.md, init.

Real processes (the installed `coder`), real git repositories, the scripted
endpoint on 127.0.0.1, and SIGKILL where the issue asks for it.
"""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import time
from pathlib import Path


from tests.conftest import API_KEY, CODER, assert_stopped, assert_valid_history, coder, git, heartbeat, rc, write
from tests.scripted_server import Reply, call, message, reasoning


def sessions_root(env: dict[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "coder" / "sessions"


def transcript(env: dict[str, str]) -> Path:
    [path] = list(sessions_root(env).glob("*/transcript.jsonl"))
    return path


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_transcript_records_everything_privately_and_never_the_key(server, env, repo: Path):
    server.add(Reply([reasoning("thinking", encrypted="gAAAA-blob=="), rc(f"echo the key is $OPENAI_API_KEY {API_KEY}")]),
               Reply([message("done")]))
    r = coder("exec", "--json", f"my key is {API_KEY}, run something", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    path = transcript(env)
    text = path.read_text()
    assert API_KEY not in text and "[redacted]" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    recs = records(path)
    header = recs[0]
    assert header["type"] == "header" and header["project"] == str(repo) and header["model"] == "gpt-5.3-codex"
    assert "authorization" not in text.lower()
    kinds = [r["type"] for r in recs[1:]]
    assert "item" in kinds and "event" in kinds
    events = [r["event"]["type"] for r in recs if r["type"] == "event"]
    assert "usage" in events and events[-1] == "turn.done" and "text.delta" not in events
    started = json.loads(r.stdout.splitlines()[0])
    assert started["type"] == "run.started" and started["session"] == header["id"]


def test_sigkill_mid_turn_then_resume_gives_a_valid_next_request(server, env, repo: Path):
    blob = "gAAAA" + "x" * 300 + "=="
    beat = repo / "beat"
    first = [reasoning("I will run the slow check.", encrypted=blob), rc(f"{heartbeat(beat)} sleep 30")]
    server.add(Reply(first))
    proc = subprocess.Popen([str(CODER), "exec", "check it"], env=env, cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not beat.exists() and time.monotonic() < deadline:  # the command is running: mid-turn
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert_stopped(beat)  # the sandboxed command did not outlive coder
    with transcript(env).open("a") as f:
        f.write('{"type": "item", "item": {"type": "mess')  # and a write cut off mid-line
    server.add(Reply([message("Resumed fine.")]))
    r = coder("exec", "--last", "go on", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "cut off" in r.stderr and "Traceback" not in r.stderr
    body = server.bodies[-1]["input"]
    assert_valid_history(body)
    assert body[1] == first[0] and body[2] == first[1]  # reasoning and call, byte for byte
    assert json.dumps(body[1]) == json.dumps(first[0])
    assert body[3]["type"] == "function_call_output" and "interrupted" in body[3]["output"].lower()
    assert body[4]["content"][0]["text"] == "go on"


def test_resume_replays_the_history_exactly_and_continues_it(server, env, repo: Path):
    turn = [reasoning("Reading.", encrypted="gAAAA-one=="), call("read_file", {"path": "app.py"})]
    server.add(Reply(turn), Reply([message("It prints v1.")]))
    assert coder("exec", "what does app.py print?", env=env, cwd=repo).returncode == 0
    before = server.bodies[-1]["input"] + [{"type": "message", "role": "assistant"}]
    sid = records(transcript(env))[0]["id"]
    server.add(Reply([message("Yes.")]))
    r = coder("exec", "--resume", sid[:10], "sure?", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    resumed = server.bodies[-1]
    assert resumed["input"][: len(before) - 1] == before[:-1]  # everything sent before, unchanged
    assert resumed["input"][-2]["content"][0]["text"] == "It prints v1."
    assert resumed["input"][-1]["content"] == [{"type": "input_text", "text": "sure?"}]
    assert resumed["instructions"] == server.bodies[0]["instructions"]


def test_sessions_lists_this_projects_sessions(server, env, repo: Path, tmp_path: Path):
    other = tmp_path / "other"
    other.mkdir()
    server.add(Reply([message("a")]), Reply([message("b")]))
    coder("exec", "fix the flaky test", env=env, cwd=repo)
    coder("exec", "elsewhere", env=env, cwd=other)
    r = coder("sessions", env=env, cwd=repo)
    assert r.returncode == 0 and "fix the flaky test" in r.stdout and "elsewhere" not in r.stdout
    assert coder("sessions", "--all", env=env, cwd=repo).stdout.count("\n") >= 3


def test_checkpoints_leave_the_users_git_state_alone(server, env, repo: Path):
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "untracked.txt").write_text("u\n")
    git(repo, "stash", "list")
    status, index = git(repo, "status", "--porcelain"), (repo / ".git" / "index").read_bytes()
    head, stash = git(repo, "rev-parse", "HEAD"), git(repo, "stash", "list")
    server.add(Reply([write("new.py", "x = 1\n")]), Reply([message("done")]))
    assert coder("exec", "add new.py", env=env, cwd=repo).returncode == 0
    assert (repo / ".git" / "index").read_bytes() == index
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "stash", "list") == stash
    assert sorted(git(repo, "status", "--porcelain").splitlines()) == sorted(status.splitlines() + ["?? new.py"])
    assert "refs/coder/checkpoints/" in git(repo, "for-each-ref")


def test_undo_restores_only_the_agents_files_and_walks_back(server, env, repo: Path):
    server.add(Reply([write("app.py", "print('v2')\n")]), Reply([message("v2")]),
               Reply([write("app.py", "print('v3')\n"), write("extra.py", "y = 2\n")]), Reply([message("v3")]))
    assert coder("exec", "make it v2", env=env, cwd=repo).returncode == 0
    assert coder("exec", "--last", "make it v3", env=env, cwd=repo).returncode == 0
    (repo / "notes.txt").write_text("my own edit\n")  # by hand, elsewhere
    r = coder("undo", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert (repo / "app.py").read_text() == "print('v2')\n" and not (repo / "extra.py").exists()
    assert (repo / "notes.txt").read_text() == "my own edit\n"
    assert coder("undo", env=env, cwd=repo).returncode == 0  # once more: one turn further back
    assert (repo / "app.py").read_text() == "print('v1')\n"
    r = coder("undo", env=env, cwd=repo)
    assert r.returncode == 1 and "nothing to undo" in r.stderr


def test_undo_refuses_when_the_user_edited_the_same_file(server, env, repo: Path):
    server.add(Reply([write("app.py", "print('agent')\n")]), Reply([message("ok")]))
    assert coder("exec", "change app.py", env=env, cwd=repo).returncode == 0
    (repo / "app.py").write_text("print('agent')\nprint('mine too')\n")
    r = coder("undo", env=env, cwd=repo)
    assert r.returncode == 1 and "undo refused" in r.stderr and "app.py" in r.stderr
    assert "+print('mine too')" in r.stdout  # the diff is shown
    assert (repo / "app.py").read_text() == "print('agent')\nprint('mine too')\n"


def test_undo_outside_git_from_copies(server, env, workspace: Path):
    (workspace / "plain.txt").write_text("original\n")
    server.add(Reply([write("plain.txt", "changed\n"), write("made.txt", "new\n")]), Reply([message("ok")]))
    assert coder("exec", "edit", env=env, cwd=workspace).returncode == 0
    r = coder("undo", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert (workspace / "plain.txt").read_text() == "original\n" and not (workspace / "made.txt").exists()


def test_auto_commit_commits_only_the_turns_files(server, env, repo: Path):
    (repo / "notes.txt").write_text("unrelated dirty edit\n")
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {repo / '.git' / 'hook-ran'}\n")
    hook.chmod(0o755)
    server.add(Reply([write("app.py", "print('fixed')\n")]), Reply([message("fixed")]))
    r = coder("exec", "--auto-commit", "fix app.py\nplease", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert git(repo, "log", "-1", "--format=%an|%s") == "coder|coder: fix app.py\n"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["app.py"]
    assert git(repo, "status", "--porcelain") == " M notes.txt\n"
    assert (repo / ".git" / "hook-ran").exists()  # hooks ran: no --no-verify


def test_agents_md_from_three_levels_in_order(server, env, repo: Path):
    (Path(env["XDG_CONFIG_HOME"]) / "coder").mkdir(parents=True)
    (Path(env["XDG_CONFIG_HOME"]) / "coder" / "AGENTS.md").write_text("USER: answer briefly\n")
    (repo / "AGENTS.md").write_text("ROOT: run make test\n")
    (repo / "pkg").mkdir()
    (repo / "pkg" / "AGENTS.md").write_text("PKG: tabs here\n")
    (repo / "pkg" / "sub").mkdir()
    (repo / "pkg" / "sub" / "AGENTS.md").write_text("SUB: no network\n")
    server.add(Reply([message("ok")]))
    assert coder("exec", "hi", env=env, cwd=repo / "pkg" / "sub").returncode == 0
    text = server.bodies[0]["instructions"]
    positions = [text.index(marker) for marker in ("USER:", "ROOT:", "PKG:", "SUB:")]
    assert positions == sorted(positions)
    first = server.bodies[0]["input"][0]["content"]
    assert first[0]["text"] == "hi" and first[1]["text"].startswith("\n\n<environment_context>")
    assert f"Working directory: {repo / 'pkg' / 'sub'}" in first[1]["text"] and "Git: branch" in first[1]["text"]


def test_init_writes_a_starter_agents_md(server, env, repo: Path):
    server.add(Reply([write("AGENTS.md", "# Agents\nRun `make test`.\n")]), Reply([message("Wrote AGENTS.md.")]))
    r = coder("init", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert (repo / "AGENTS.md").read_text().startswith("# Agents")
    assert "Survey this repository" in server.bodies[0]["input"][0]["content"][0]["text"]
    r = coder("init", env=env, cwd=repo)
    assert r.returncode == 2 and "already exists" in r.stderr


def test_a_nested_repository_planted_by_the_model_runs_nothing_at_checkpoints(server, env, repo: Path, tmp_path: Path):
    marker = tmp_path / "fsmonitor-ran"
    plant = (f"git init -q sub && git -C sub -c user.name=m -c user.email=m@m commit -q --allow-empty -m x && "
             f"echo planted > sub/f && git -C sub config core.fsmonitor 'touch {marker}; false'")
    server.add(Reply([rc(plant)]), Reply([message("one")]), Reply([write("app.py", "print(2)\n")]), Reply([message("two")]))
    assert coder("exec", "--sandbox", "full-access", "plant it", env=env, cwd=repo).returncode == 0
    assert (repo / "sub" / ".git").is_dir()
    r = coder("exec", "--last", "go on", env=env, cwd=repo)  # two more checkpoints with sub/ in the tree
    assert r.returncode == 0, r.stderr
    assert not marker.exists()
    assert coder("undo", env=env, cwd=repo).returncode == 0 and not marker.exists()


def test_checkpoints_never_copy_what_the_model_may_not_read(server, env, repo: Path):
    (repo / "secrets").mkdir()
    (repo / "secrets" / "token.txt").write_text("tok-3141592653\n")
    (repo / "big.bin").write_bytes(b"\0" * (11 << 20))  # untracked and over the size cap
    (repo / ".coder").mkdir()
    (repo / ".coder" / "config.toml").write_text('deny_read = ["secrets"]\n')
    server.add(Reply([write("app.py", "print(2)\n")]), Reply([message("ok")]))
    assert coder("exec", "edit", env=env, cwd=repo).returncode == 0
    listing = git(repo, "ls-tree", "-r", "--name-only", "refs/coder/checkpoints/" + records(transcript(env))[0]["id"])
    assert "app.py" in listing and "secrets/token.txt" not in listing and "big.bin" not in listing
    objects = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo, capture_output=True).stdout
    assert b"tok-3141592653" not in objects


def test_auto_commit_hooks_from_the_work_tree_run_in_the_sandbox(server, env, repo: Path, tmp_path: Path):
    """.husky/ is the work tree's: the model can write it, so its hook may do no more than the model."""
    outside = tmp_path / "hook-escaped"
    git(repo, "config", "core.hooksPath", ".husky")
    server.add(Reply([write(".husky/pre-commit", f"#!/bin/sh\necho $OPENAI_API_KEY > {outside}\n"
                                                 "echo ran > .husky/ran\n"),
                      rc("chmod +x .husky/pre-commit")]),
               Reply([message("hook planted")]))
    r = coder("exec", "--auto-commit", "add a hook", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert (repo / ".husky" / "ran").read_text() == "ran\n"  # the hook did run (no --no-verify) ...
    assert not outside.exists()  # ... confined: nothing written outside, and it never saw the key
    assert git(repo, "log", "-1", "--format=%an") == "coder\n"
