"""Undo as people really work, through the installed `coder`: a user editing while the agent runs,
two sessions in one repository, a process killed mid-turn, big files, line endings, auto-commit.

Real processes, real git, the scripted endpoint on 127.0.0.1, and real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path


from tests.conftest import CODER, coder, git, rc, write
from tests.scripted_server import Reply, ScriptedServer, message


def test_what_the_user_does_while_a_turn_runs_survives_undo(server, env, repo: Path):
    def meanwhile(body: dict) -> Reply:  # the model "thinks" for a second; the user works meanwhile
        (repo / "notes.txt").write_text("edited by hand during the turn\n")
        (repo / "mine.txt").write_text("created by hand during the turn\n")
        return Reply([write("b.py", "B = 1\n")], delay=0.2)

    server.add(Reply([write("app.py", "print('v2')\n")]), meanwhile, Reply([message("done")]))
    assert coder("exec", "change things", env=env, cwd=repo).returncode == 0
    r = coder("undo", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "restored app.py" in r.stdout and "restored b.py" in r.stdout and "notes.txt" not in r.stdout
    assert (repo / "app.py").read_text() == "print('v1')\n" and not (repo / "b.py").exists()
    assert (repo / "notes.txt").read_text() == "edited by hand during the turn\n"
    assert (repo / "mine.txt").read_text() == "created by hand during the turn\n"


def test_two_sessions_at_once_undo_only_their_own(server, env, repo: Path):
    other = ScriptedServer()
    try:
        server.add(Reply([write("a.txt", "session A\n")], delay=0.3), Reply([rc("sleep 0.6; echo A > a2.txt")]),
                   Reply([message("A done")]))
        other.add(Reply([write("b.txt", "session B\n")], delay=0.3), Reply([rc("sleep 0.2; echo B > b2.txt")]),
                  Reply([message("B done")]))
        procs = [subprocess.Popen([str(CODER), "exec", "--json", prompt], env={**env, "OPENAI_BASE_URL": url},
                                  cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for prompt, url in (("task A", server.base_url), ("task B", other.base_url))]
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        session_a = json.loads(outs[0][0].splitlines()[0])["session"]
        r = coder("undo", "--session", session_a, env=env, cwd=repo)
        assert r.returncode == 0, r.stderr
        assert not (repo / "a.txt").exists() and not (repo / "a2.txt").exists()
        assert (repo / "b.txt").read_text() == "session B\n" and (repo / "b2.txt").read_text() == "B\n"
    finally:
        other.close()


def test_a_big_file_the_agent_overwrote_comes_back(server, env, repo: Path):
    big = os.urandom(20 << 20)
    (repo / "data.bin").write_bytes(big)  # untracked and over what snapshots keep
    server.add(Reply([write("data.bin", "replaced\n")]), Reply([message("done")]))
    assert coder("exec", "replace it", env=env, cwd=repo).returncode == 0
    r = coder("undo", env=env, cwd=repo)
    assert r.returncode == 0 and "restored data.bin" in r.stdout, r.stdout + r.stderr
    assert (repo / "data.bin").read_bytes() == big


def test_a_turn_killed_with_minus_9_can_be_undone(server, env, repo: Path):
    server.add(Reply([write("app.py", "print('half done')\n"), rc("echo made > made.txt; sleep 60")]))
    proc = subprocess.Popen([str(CODER), "exec", "work"], env=env, cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not (repo / "made.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    r = coder("undo", env=env, cwd=repo)  # the command was cut off: its changes need a look first
    assert r.returncode == 1 and "made.txt" in r.stderr and "--force" in r.stderr, r.stdout + r.stderr
    r = coder("undo", "--force", env=env, cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (repo / "app.py").read_text() == "print('v1')\n" and not (repo / "made.txt").exists()


def test_undo_keeps_crlf_line_endings_exactly(server, env, repo: Path):
    git(repo, "config", "core.autocrlf", "true")
    (repo / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    git(repo, "add", "win.txt")
    git(repo, "commit", "-qm", "crlf")
    (repo / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    server.add(Reply([rc("printf 'rewritten\\n' > win.txt")]), Reply([message("done")]))
    assert coder("exec", "rewrite", env=env, cwd=repo).returncode == 0
    assert coder("undo", env=env, cwd=repo).returncode == 0
    assert (repo / "win.txt").read_bytes() == b"one\r\ntwo\r\n"


def test_a_refused_undo_says_what_to_do_and_force_keeps_your_version(server, env, repo: Path):
    server.add(Reply([write("app.py", "print('agent')\n")]), Reply([message("done")]))
    assert coder("exec", "edit", env=env, cwd=repo).returncode == 0
    (repo / "app.py").write_text("print('agent')\nprint('mine')\n")
    refused = coder("undo", env=env, cwd=repo)
    assert refused.returncode == 1 and "--force" in refused.stderr and "+print('mine')" in refused.stdout
    forced = coder("undo", "--force", env=env, cwd=repo)
    assert forced.returncode == 0, forced.stderr
    assert (repo / "app.py").read_text() == "print('v1')\n"
    kept = Path(forced.stdout.split("your version was kept in ")[1].split()[0])
    assert kept.read_text() == "print('agent')\nprint('mine')\n"


def test_the_model_is_told_what_was_undone(server, env, repo: Path):
    server.add(Reply([write("app.py", "print('agent')\n")]), Reply([message("edited")]), Reply([message("ok")]))
    assert coder("exec", "edit", env=env, cwd=repo).returncode == 0
    assert coder("undo", env=env, cwd=repo).returncode == 0
    assert coder("exec", "--last", "what now?", env=env, cwd=repo).returncode == 0
    texts = [p["text"] for i in server.bodies[-1]["input"] if i.get("role") == "user" for p in i["content"]]
    note = next(t for t in texts if t.startswith("[coder] The user undid"))
    assert "app.py" in note and "Do not assume" in note
    assert texts[-1] == "what now?"


def test_undo_of_an_auto_commit_removes_the_commit(server, env, repo: Path):
    start = git(repo, "rev-parse", "HEAD").strip()
    server.add(Reply([write("app.py", "print('feature')\n")]), Reply([message("done")]))
    r = coder("exec", "--auto-commit", "add the feature", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert git(repo, "rev-parse", "HEAD").strip() != start
    u = coder("undo", env=env, cwd=repo)
    assert u.returncode == 0 and "removed its commit" in u.stdout, u.stdout + u.stderr
    assert git(repo, "rev-parse", "HEAD").strip() == start
    assert git(repo, "status", "--porcelain") == ""


def test_coder_never_writes_the_users_index(server, env, repo: Path):
    """A user's `git add` at the same moment must never find the index locked by coder."""
    time.sleep(1.1)
    (repo / "app.py").write_text("print('touched by the user')\n")  # the index is now stale for it
    index = repo / ".git" / "index"
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    server.add(Reply([rc("true"), write("new.py", "x = 1\n")]), Reply([message("done")]))
    assert coder("exec", "work", env=env, cwd=repo).returncode == 0
    assert coder("undo", env=env, cwd=repo).returncode == 0
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before


def test_a_full_disk_stops_exec_in_one_line_and_loses_nothing(server, env, repo: Path):
    """A file-size limit stands in for a full disk: the transcript cannot grow past it."""
    big = "x" * 200_000
    server.add(Reply([write("app.py", "print('v2')\n"), rc(f"printf '{big[:100]}%.0s' $(seq 2000)")]),
               Reply([message("done")]))
    r = subprocess.run(["bash", "-c", f'ulimit -f 64 && exec "{CODER}" exec -q work'], env=env, cwd=repo,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") <= 3, r.stderr
    assert "cannot record the session in" in r.stderr and "File too large" in r.stderr
    assert (repo / "app.py").read_text() == "print('v2')\n"  # the agent's work stays


def test_a_sessions_folder_that_cannot_be_made_is_one_line(server, env, repo: Path):
    data = Path(env["XDG_DATA_HOME"]) / "coder"
    data.mkdir(parents=True)
    (data / "sessions").write_text("a file where the sessions folder should be\n")
    r = coder("exec", "hi", env=env, cwd=repo)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "cannot record the session in" in r.stderr and server.requests == []


def test_a_session_in_a_subfolder_keeps_its_files_when_the_root_session_undoes(server, env, repo: Path):
    """Session A works at the repository's top, B in sub/: A's command overlaps B's write."""
    (repo / "sub").mkdir()
    other = ScriptedServer()
    try:
        server.add(Reply([rc("sleep 1.2; echo A > a.txt")]), Reply([message("A done")]))
        other.add(Reply([write("b.txt", "session B\n")], delay=0.5), Reply([message("B done")]))
        a = subprocess.Popen([str(CODER), "exec", "--json", "task A"], env=env, cwd=repo,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        b = subprocess.Popen([str(CODER), "exec", "task B"], env={**env, "OPENAI_BASE_URL": other.base_url},
                             cwd=repo / "sub", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out_a, _ = a.communicate(timeout=60)
        b.communicate(timeout=60)
        session_a = json.loads(out_a.splitlines()[0])["session"]
        r = coder("undo", "--session", session_a, env=env, cwd=repo)
        assert r.returncode == 0, r.stdout + r.stderr
        assert not (repo / "a.txt").exists()
        assert (repo / "sub" / "b.txt").read_text() == "session B\n"
        assert "left alone sub/b.txt" in r.stdout
    finally:
        other.close()


def test_undo_of_a_session_still_working_is_refused(server, env, repo: Path):
    server.add(Reply([write("early.txt", "e\n"), rc("sleep 30")]))
    proc = subprocess.Popen([str(CODER), "exec", "--json", "work"], env=env, cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        session = json.loads(proc.stdout.readline())["session"]
        deadline = time.monotonic() + 20
        while not (repo / "early.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        r = coder("undo", "--session", session, env=env, cwd=repo)
        assert r.returncode == 1 and "still working on a turn" in r.stderr, r.stderr
        assert (repo / "early.txt").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
