"""Structured tool results: a command's exit code, timeout, stop and sandbox refusal are fields of the
tool.finished event (and of `coder exec --json`), `ok` is False for any failed command, and approvals
act on the field, never on the words of the output."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import coder, rc, refused_write
from tests.core.conftest import assert_valid_history, events_of, run
from tests.core.test_approvals import drive
from tests.scripted_server import Reply, call, message


def finished(events):
    return events_of(events, "tool.finished")


def test_a_failing_command_is_not_ok_and_carries_its_exit_code_and_tail(server, make_agent):
    lines = "; ".join(f"echo line{n}" for n in range(30))
    server.add(Reply([rc(f"{lines}; echo boom >&2; exit 3"), rc("echo fine")]), Reply([message("done")]))
    bad, good = finished(run(make_agent(), "go"))
    assert (bad.ok, bad.exit_code, bad.timed_out, bad.interrupted, bad.denied) == (False, 3, False, False, False)
    tail = bad.output_tail.splitlines()
    assert len(tail) == 20 and tail[-1] == "boom" and tail[0] == "line11"  # the command's own lines, no header
    assert (good.ok, good.exit_code, good.output_tail) == (True, 0, "fine")
    # What the model reads is as before.
    assert bad.output.startswith("Exit code: 3\n") and bad.output.endswith("line29\nboom")


def test_a_timeout_is_not_ok_and_has_no_exit_code(server, make_agent):
    server.add(Reply([call("run_command", {"command": "echo started; sleep 30", "timeout_seconds": 1,
                                           "workdir": None})]), Reply([message("done")]))
    (event,) = finished(run(make_agent(), "go"))
    assert (event.ok, event.exit_code, event.timed_out, event.interrupted) == (False, None, True, False)
    assert event.output_tail == "started"
    assert event.to_dict()["timed_out"] is True and event.to_dict()["exit_code"] is None


def test_a_sandbox_refusal_is_a_field(server, make_agent, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    server.add(Reply([rc(f"echo x > {outside}/f.txt")]), Reply([message("blocked")]))
    (event,) = finished(run(make_agent(), "go"))
    assert not event.ok and event.denied and event.exit_code == 1
    assert refused_write(event.denial) and str(outside) in event.denial


def test_the_same_words_without_a_sandbox_are_not_a_refusal(server, make_agent, tmp_path: Path):
    server.add(Reply([rc("echo 'cp: cannot open x: Permission denied'; exit 1")]), Reply([message("ok")]))
    (event,) = finished(run(make_agent(sandbox="full-access"), "go"))
    assert not event.ok and event.exit_code == 1 and not event.denied and event.denial == ""


def test_a_timed_out_command_that_printed_permission_denied_is_not_offered_outside_the_sandbox(
        server, make_agent):
    # Before: the core searched the output for "Permission denied" and offered to re-run this unsandboxed.
    server.add(Reply([call("run_command", {"command": "echo 'open: Permission denied'; sleep 30",
                                           "timeout_seconds": 1, "workdir": None})]), Reply([message("ok")]))
    events = drive(make_agent(approval="on-request"), "go", [])
    assert events_of(events, "approval.request") == []
    (event,) = finished(events)
    assert event.timed_out and not event.denied


def test_approval_comes_from_the_denied_field_and_the_rerun_carries_its_own_fields(
        server, make_agent, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    server.add(Reply([rc(f"echo two > {outside}/two.txt")]), Reply([message("done")]))
    events = drive(make_agent(approval="on-request"), "write outside", ["yes"])
    (request,) = events_of(events, "approval.request")
    (event,) = finished(events)
    assert request.reason.startswith("the sandbox blocked it: ") and str(outside) in request.reason
    assert (event.ok, event.exit_code, event.denied) == (True, 0, False)  # the approved re-run succeeded
    assert event.output.startswith("Re-run outside the sandbox with the user's approval.\nExit code: 0")
    assert_valid_history(server.bodies[-1]["input"])


def test_exec_json_carries_the_fields(server, env, workspace: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    server.add(
        Reply([rc("echo oops; exit 2"),
               call("run_command", {"command": "sleep 30", "timeout_seconds": 1, "workdir": None}),
               rc(f"touch {outside}/x")]),
        Reply([message("done")]),
    )
    r = coder("exec", "--json", "go", env=env, cwd=workspace)
    events = [json.loads(line) for line in r.stdout.splitlines()]
    failed, slow, denied = [e for e in events if e["type"] == "tool.finished"]
    assert {k: failed[k] for k in ("ok", "exit_code", "timed_out", "denied", "output_tail")} == \
        {"ok": False, "exit_code": 2, "timed_out": False, "denied": False, "output_tail": "oops"}
    assert (slow["ok"], slow["exit_code"], slow["timed_out"]) == (False, None, True)
    assert (denied["ok"], denied["denied"]) == (False, True) and refused_write(denied["denial"])
    assert all(isinstance(e["counts"], dict) and "interrupted" in e for e in (failed, slow, denied))
