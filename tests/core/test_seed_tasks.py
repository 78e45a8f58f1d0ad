"""The six example tasks of the seed's coding-agent guide, end to end against the scripted endpoint.

Each test plays the model's side, then checks what really happened: files on
disk, and the function_call_output the agent sent back in the next request.
"""

from __future__ import annotations

from pathlib import Path

from tests.core.conftest import assert_valid_history, events_of, run
from tests.scripted_server import Reply, call, message


def outputs_in(body: dict) -> dict[str, str]:
    return {i["call_id"]: i["output"] for i in body["input"] if i.get("type") == "function_call_output"}


def test_read_file_and_explain_entry_point(server, make_agent, workspace: Path):
    (workspace / "main.py").write_text("import sys\n\ndef main():\n    print('hi')\n\nif __name__ == '__main__':\n    main()\n")
    c = call("read_file", {"path": "main.py", "offset": None, "limit": None})
    server.add(Reply([c]), Reply([message("main() prints 'hi'.")]))
    events = run(make_agent(), "Read main.py and tell me what the entry point function does.")

    assert events[-1].status == "completed" and events[-1].final_text == "main() prints 'hi'."
    out = outputs_in(server.bodies[1])[c["call_id"]]
    assert "     3\tdef main():" in out
    assert "     7\t    main()" in out
    assert_valid_history(server.bodies[1]["input"])


def test_write_file_then_read_it_back(server, make_agent, workspace: Path):
    content = "import json\n\n\ndef parse(text):\n    return json.loads(text)\n"
    w = call("write_file", {"path": "utils.py", "content": content})
    r = call("read_file", {"path": "utils.py"})
    server.add(Reply([w]), Reply([r]), Reply([message("Written and confirmed.")]))
    events = run(make_agent(), "Write a file utils.py with a helper function for parsing JSON, then read it back.")

    assert (workspace / "utils.py").read_text() == content
    assert "Created utils.py (5 lines)" in outputs_in(server.bodies[1])[w["call_id"]]
    assert "     5\t    return json.loads(text)" in outputs_in(server.bodies[2])[r["call_id"]]
    assert events[-1].ok


def test_write_outside_workspace_is_refused_and_the_run_goes_on(server, make_agent, workspace: Path, tmp_path: Path):
    target = tmp_path / "outside" / "utils.py"
    w = call("write_file", {"path": str(target), "content": "x = 1\n"})
    server.add(Reply([w]), Reply([message("I could not write there.")]))
    events = run(make_agent(), "Write a file outside the project.")

    assert not target.exists() and not target.parent.exists()
    out = outputs_in(server.bodies[1])[w["call_id"]]
    assert out.startswith("Error:") and "outside the writable roots" in out
    assert events[-1].ok


def test_search_todo_lines_with_line_numbers(server, make_agent, workspace: Path):
    (workspace / "app.py").write_text("def a():\n    pass\n# TODO: handle errors\nx = 1\n# TODO: add tests\n")
    s = call("search_file", {"pattern": "TODO", "path": "app.py", "glob": None, "case_insensitive": None,
                             "context_lines": None})
    server.add(Reply([s]), Reply([message("Lines 3 and 5.")]))
    run(make_agent(), "Search app.py for all lines containing 'TODO' and list their line numbers.")

    out = outputs_in(server.bodies[1])[s["call_id"]]
    assert "app.py:3:# TODO: handle errors" in out
    assert "app.py:5:# TODO: add tests" in out
    assert "app.py:4" not in out


def test_edit_setting_then_verify(server, make_agent, workspace: Path):
    (workspace / "config.py").write_text("NAME = 'demo'\nDEBUG = False\nPORT = 80\n")
    e = call("edit_file", {"path": "config.py", "old_string": "DEBUG = False", "new_string": "DEBUG = True",
                           "replace_all": None})
    r = call("read_file", {"path": "config.py"})
    server.add(Reply([e]), Reply([r]), Reply([message("DEBUG is now True.")]))
    events = run(make_agent(), "Edit config.py: replace DEBUG = False with DEBUG = True, then verify the change.")

    assert (workspace / "config.py").read_text() == "NAME = 'demo'\nDEBUG = True\nPORT = 80\n"
    assert "     2\tDEBUG = True" in outputs_in(server.bodies[2])[r["call_id"]]
    assert events[-1].ok


def test_run_failing_test_script_and_report(server, make_agent, workspace: Path):
    (workspace / "tests").mkdir()
    (workspace / "tests" / "test_api.py").write_text(
        "import sys\nprint('test_get ... ok')\nprint('test_post ... FAIL: expected 201, got 500', file=sys.stderr)\n"
        "sys.exit(1)\n"
    )
    c = call("run_command", {"command": "python3 tests/test_api.py", "timeout_seconds": None, "workdir": None})
    server.add(Reply([c]), Reply([message("test_post fails: expected 201, got 500.")]))
    events = run(make_agent(), "Run python3 tests/test_api.py and report any failures.")

    out = outputs_in(server.bodies[1])[c["call_id"]]
    assert "Exit code: 1" in out
    assert out.index("test_get ... ok") < out.index("test_post ... FAIL: expected 201, got 500")
    finished = events_of(events, "tool.finished")
    assert finished[0].name == "run_command" and not finished[0].ok and finished[0].exit_code == 1  # a failed command


def test_list_root_and_find_typescript_under_src(server, make_agent, workspace: Path):
    (workspace / "src" / "lib").mkdir(parents=True)
    (workspace / "src" / "index.ts").write_text("export {}\n")
    (workspace / "src" / "lib" / "util.ts").write_text("export const x = 1\n")
    (workspace / "src" / "lib" / "notes.md").write_text("notes\n")
    (workspace / "README.md").write_text("# demo\n")
    ls = call("list_dir", {"path": ".", "depth": 1})
    g = call("glob_files", {"pattern": "**/*.ts", "path": "src"})
    server.add(Reply([ls, g]), Reply([message("Two TypeScript files.")]))
    run(make_agent(), "List the project root and find all TypeScript files under src/.")

    outs = outputs_in(server.bodies[1])
    assert "src/" in outs[ls["call_id"]] and "README.md" in outs[ls["call_id"]]
    found = [line for line in outs[g["call_id"]].splitlines() if line.endswith(".ts")]
    assert sorted(found) == ["src/index.ts", "src/lib/util.ts"]
