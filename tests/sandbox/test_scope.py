"""A file scope (`coder batch --scope file`): a session may write its target file(s) and its temp dir, nothing else.

Commands run through the real run_command tool under each Linux backend, and
every test checks the files afterwards (content, existence), not only an exit
code. The file tools go through `call_tool`, as the agent calls them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from coder.instructions import build_instructions, sandbox_note
from coder.tools import call_tool
from coder.tools.base import ToolContext
from coder.tools.run_command import TOOL
from sandbox import backends
from sandbox.paths import PathDenied, resolve_write
from sandbox.policy import Mode, Policy

TARGET = "src/a.py"


def scoped_policy(workspace: Path, temp: Path, secret_dir: Path, *targets: str) -> Policy:
    return Policy.for_workspace(workspace, Mode.WORKSPACE_WRITE, temp_dir=temp, deny_read=(secret_dir,),
                                limits={"cpu": 5, "fsize": 1 << 20},
                                writable_files=tuple(Path(t) for t in targets or (TARGET,)))


def context(policy: Policy, temp: Path, tmp_path: Path, backend: backends.Backend) -> ToolContext:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(temp), "LANG": "C.UTF-8"}
    if "PYTHONPATH" in os.environ:  # the unprivileged re-run finds pytest this way
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return ToolContext(policy=policy, env=env, default_timeout=20, backend=backend,
                       registry=tmp_path / "placeholders")


@pytest.fixture
def sbx(tree: Path, temp: Path, tmp_path: Path, secret_dir: Path, backend: backends.Backend) -> ToolContext:
    return context(scoped_policy(tree, temp, secret_dir), temp, tmp_path, backend)


@pytest.fixture
def tools(tree: Path, temp: Path, tmp_path: Path, secret_dir: Path) -> ToolContext:
    """For the file tools only, which run in coder's own process: no command backend needed."""
    return context(scoped_policy(tree, temp, secret_dir), temp, tmp_path, backends.Backend("none", "not used"))


def sh(ctx: ToolContext, command: str) -> str:
    return TOOL.run(ctx, TOOL.validate_args({"command": command, "timeout_seconds": None})).text


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


class TestCommands:
    def test_the_target_can_be_written_in_place(self, sbx: ToolContext, tree: Path):
        out = sh(sbx, f"echo 'a = 2' >> {TARGET} && cat {TARGET}")
        assert "Exit code: 0" in out, out
        assert (tree / TARGET).read_text() == "a = 1\na = 2\n"
        out = sh(sbx, f"printf 'a = 3\\n' > {TARGET}")
        assert "Exit code: 0" in out, out
        assert (tree / TARGET).read_text() == "a = 3\n"
        out = sh(sbx, f"python3 -c \"open('{TARGET}', 'w').write('a = 4\\n')\"")
        assert "Exit code: 0" in out, out
        assert (tree / TARGET).read_text() == "a = 4\n"
        out = sh(sbx, "cd src && echo 'a = 5' >> a.py")  # from another folder, by a relative name
        assert "Exit code: 0" in out, out
        assert (tree / TARGET).read_text() == "a = 4\na = 5\n"

    def test_other_files_cannot_be_written_or_created(self, sbx: ToolContext, tree: Path):
        before = listing(tree), listing(tree / "src")
        out = sh(sbx, "echo x > src/b.py; echo x >> other.py; touch new.py; touch src/new.py; echo x > src/c.py; "
                      "mkdir d; cp src/a.py copy.py; ln -s a.py src/link.py; ln src/a.py src/hard.py; "
                      "python3 -c \"open('other.py', 'w').write('pwned')\"; "
                      "truncate -s 0 other.py; echo done")
        assert "done" in out, out
        assert (tree / "src" / "b.py").read_text() == "b = 1\n"
        assert (tree / "other.py").read_text() == "other = 1\n"
        assert (listing(tree), listing(tree / "src")) == before, out
        assert (tree / TARGET).read_text() == "a = 1\n"

    def test_no_file_can_be_deleted_or_renamed_the_target_included(self, sbx: ToolContext, tree: Path):
        out = sh(sbx, f"rm -f other.py; rm -f src/b.py; mv other.py gone.py; mv {TARGET} src/moved.py; "
                      f"mv src/b.py {TARGET}; rm -f {TARGET}; "
                      f"python3 -c \"import os; os.rename('{TARGET}', 'x.py')\"; "
                      "python3 -c \"import os; os.unlink('src/b.py')\"; echo done")
        assert "done" in out, out
        assert listing(tree) == ["other.py", "src"], out
        assert listing(tree / "src") == ["a.py", "b.py"], out
        assert (tree / TARGET).read_text() == "a = 1\n"
        assert (tree / "src" / "b.py").read_text() == "b = 1\n"
        assert (tree / "other.py").read_text() == "other = 1\n"

    def test_sed_in_place_fails_and_leaves_the_target_as_it_was(self, sbx: ToolContext, tree: Path):
        """sed -i writes a temp file beside the target and renames it over: the folder is read-only (accepted)."""
        out = sh(sbx, f"sed -i 's/1/2/' {TARGET}")
        assert "Exit code: 0" not in out, out
        assert (tree / TARGET).read_text() == "a = 1\n"
        assert listing(tree / "src") == ["a.py", "b.py"], out

    def test_the_temp_dir_stays_writable(self, sbx: ToolContext, temp: Path):
        out = sh(sbx, 'echo scratch > "$TMPDIR/s.txt" && mkdir "$TMPDIR/d" && mv "$TMPDIR/s.txt" "$TMPDIR/d/" '
                      '&& touch "$TMPDIR/gone" && rm "$TMPDIR/gone" && cat "$TMPDIR/d/s.txt"')
        assert "Exit code: 0" in out, out
        assert (temp / "d" / "s.txt").read_text() == "scratch\n"
        assert not (temp / "gone").exists()

    def test_normal_work_runs(self, sbx: ToolContext, tree: Path):
        """Reading and testing the project still works; Python's own caches are just not written."""
        (tree / "test_a.py").write_text("import sys\nsys.path.insert(0, 'src')\nimport a\n\n"
                                        "def test_a():\n    assert a.a == 1\n")
        out = sh(sbx, f"{sys.executable} -B -m pytest -q -p no:cacheprovider test_a.py && "
                      f"echo '# tested' >> {TARGET}")
        assert "Exit code: 0" in out and "1 passed" in out, out
        assert (tree / TARGET).read_text() == "a = 1\n# tested\n"
        assert not (tree / "src" / "__pycache__").exists()

    def test_protected_names_are_refused_and_need_no_placeholder(self, sbx: ToolContext, tree: Path):
        out = sh(sbx, "mkdir .git; echo x > .envrc; mkdir -p .coder; echo done")
        assert "done" in out and "Warning" not in out, out
        for name in (".git", ".envrc", ".coder"):
            assert not os.path.lexists(tree / name), out

    def test_two_targets_each_writable_the_rest_not(self, tree: Path, temp: Path, tmp_path: Path,
                                                    secret_dir: Path, backend: backends.Backend):
        ctx = context(scoped_policy(tree, temp, secret_dir, TARGET, "src/b.py"), temp, tmp_path, backend)
        out = sh(ctx, "echo x >> src/a.py; echo y >> src/b.py; echo z >> other.py; echo done")
        assert "done" in out, out
        assert (tree / "src" / "a.py").read_text() == "a = 1\nx\n"
        assert (tree / "src" / "b.py").read_text() == "b = 1\ny\n"
        assert (tree / "other.py").read_text() == "other = 1\n"

    def test_a_target_replaced_by_a_symlink_is_not_granted(self, sbx: ToolContext, tree: Path, tmp_path: Path):
        """Only something outside the sandbox can do that; the link's destination must not become writable."""
        outside = tmp_path / "outside.txt"
        outside.write_text("original\n")
        (tree / TARGET).unlink()
        (tree / TARGET).symlink_to(outside)
        out = sh(sbx, f"echo pwned >> {TARGET}; echo done")
        assert "done" in out, out
        assert outside.read_text() == "original\n"


class TestFileTools:
    def call(self, ctx: ToolContext, name: str, **args) -> tuple[bool, str]:
        result = call_tool(ctx, name, json.dumps(args))
        return result.ok, result.output

    def test_write_file_on_the_target(self, tools: ToolContext, tree: Path):
        os.chmod(tree / TARGET, 0o640)
        ok, out = self.call(tools, "write_file", path=TARGET, content="a = 2\n")
        assert ok, out
        assert (tree / TARGET).read_text() == "a = 2\n"
        assert (tree / TARGET).stat().st_mode & 0o777 == 0o640  # atomic_write kept the permission bits
        assert listing(tree / "src") == ["a.py", "b.py"]  # no temp file left beside it
        ok, out = self.call(tools, "write_file", path=str(tree / TARGET), content="a = 3\n")  # absolute: the same
        assert ok, out
        assert (tree / TARGET).read_text() == "a = 3\n"

    def test_edit_file_on_the_target(self, tools: ToolContext, tree: Path):
        ok, out = self.call(tools, "edit_file", path=TARGET, old_string="a = 1", new_string="a = 10")
        assert ok, out
        assert (tree / TARGET).read_text() == "a = 10\n"
        assert listing(tree / "src") == ["a.py", "b.py"]

    def test_write_file_elsewhere_is_refused(self, tools: ToolContext, tree: Path):
        for path in ("other.py", "src/b.py", "new.py", "src/new.py", "src/a.py/inside", ".git/config"):
            ok, out = self.call(tools, "write_file", path=path, content="pwned\n")
            assert not ok, (path, out)
            assert out == (f"Error: cannot write {path}: this session may only write src/a.py "
                           "(batch --scope file)"), out
        assert (tree / "other.py").read_text() == "other = 1\n"
        assert (tree / "src" / "b.py").read_text() == "b = 1\n"
        assert listing(tree) == ["other.py", "src"] and listing(tree / "src") == ["a.py", "b.py"]

    def test_edit_file_elsewhere_is_refused(self, tools: ToolContext, tree: Path):
        ok, out = self.call(tools, "edit_file", path="other.py", old_string="other = 1", new_string="pwned")
        assert not ok
        assert out == "Error: cannot write other.py: this session may only write src/a.py (batch --scope file)"
        assert (tree / "other.py").read_text() == "other = 1\n"

    def test_the_temp_dir_is_writable_by_the_file_tools(self, tools: ToolContext, temp: Path):
        ok, out = self.call(tools, "write_file", path=str(temp / "notes" / "n.txt"), content="n\n")
        assert ok, out
        assert (temp / "notes" / "n.txt").read_text() == "n\n"

    def test_a_symlink_to_the_target_resolves_to_the_target(self, tools: ToolContext, tree: Path):
        (tree / "alias.py").symlink_to(tree / TARGET)
        assert resolve_write(tools.policy, "alias.py") == tree / TARGET
        with pytest.raises(PathDenied, match="may only write src/a.py"):
            resolve_write(tools.policy, "src")


class TestPolicy:
    def test_roots_are_the_files_and_the_temp_dir(self, tree: Path, temp: Path, secret_dir: Path):
        p = scoped_policy(tree, temp, secret_dir, TARGET, f"./{TARGET}", str(tree / "src" / "b.py"))
        assert p.writable_files == (tree / "src" / "a.py", tree / "src" / "b.py")  # real paths, once each
        assert p.writable_roots == (tree / "src" / "a.py", tree / "src" / "b.py", temp.resolve())
        assert p.directory_roots == (temp.resolve(),)
        assert tree not in p.writable_roots

    def test_protected_names_only_under_directory_roots(self, tree: Path, temp: Path, secret_dir: Path):
        p = scoped_policy(tree, temp, secret_dir)
        protected = backends.protected_paths(p)
        assert not any(path.startswith(str(tree)) for path in protected), protected
        assert str(temp.resolve() / ".git") in protected
        for backend in ("landlock", "bwrap"):
            guarded = backends.guarded_paths(backends.Backend(backend), p)
            assert not any(str(g).startswith(str(tree)) for g in guarded), guarded
        bwrap = backends.bwrap_args(p)
        assert ["--bind", str(tree / TARGET), str(tree / TARGET)] == bwrap[bwrap.index(str(tree / TARGET)) - 1:][:3]
        assert str(tree) not in bwrap

    def test_the_whole_workspace_without_a_scope(self, tree: Path, temp: Path, secret_dir: Path):
        p = Policy.for_workspace(tree, Mode.WORKSPACE_WRITE, temp_dir=temp, deny_read=())
        assert p.writable_files == () and p.writable_roots[0] == tree and p.directory_roots == p.writable_roots

    def test_other_modes_keep_their_roots(self, tree: Path, temp: Path):
        ro = Policy.for_workspace(tree, Mode.READ_ONLY, temp_dir=temp, deny_read=(), writable_files=(Path(TARGET),))
        assert ro.writable_roots == () and ro.writable_files == ()
        with pytest.raises(ValueError, match="does not exist"):
            Policy.for_workspace(tree, Mode.READ_ONLY, deny_read=(), writable_files=(Path("missing.py"),))

    @pytest.mark.parametrize("target, message", [
        ("missing.py", "scope target missing.py does not exist"),
        ("src", "scope target src is a directory, not a file"),
        ("../outside.txt", "scope target ../outside.txt is outside the workspace"),
        ("link_out.txt", "scope target link_out.txt is outside the workspace .* \\(it resolves to .*outside.txt\\)"),
        (".git/config", "scope target .git/config is protected \\(.git stays read-only\\)"),
        ("fifo", "scope target fifo is not a regular file"),
    ])
    def test_refused_targets(self, tree: Path, temp: Path, secret_dir: Path, target: str, message: str):
        outside = tree.parent / "outside.txt"
        outside.write_text("not yours\n")
        (tree / "link_out.txt").symlink_to(outside)
        (tree / ".git").mkdir()
        (tree / ".git" / "config").write_text("[core]\n")
        os.mkfifo(tree / "fifo")
        with pytest.raises(ValueError, match=message) as caught:
            scoped_policy(tree, temp, secret_dir, target)
        assert "\n" not in str(caught.value)

    def test_absolute_path_outside_and_an_empty_scope(self, tree: Path, temp: Path, secret_dir: Path):
        with pytest.raises(ValueError, match="outside the workspace"):
            scoped_policy(tree, temp, secret_dir, str(secret_dir / "id_rsa"))
        with pytest.raises(ValueError, match="names no file"):
            Policy.for_workspace(tree, temp_dir=temp, deny_read=(), writable_files=())

    def test_the_model_is_told(self, tree: Path, temp: Path, secret_dir: Path):
        p = scoped_policy(tree, temp, secret_dir)
        text = build_instructions(p)
        assert "you may write only src/a.py" in text and "rest of the workspace is read-only" in text
        assert "sed -i" in text and "inside the workspace" not in text
        assert "you may write only src/a.py" in sandbox_note(p)
        whole = build_instructions(Policy.for_workspace(tree, temp_dir=temp, deny_read=()))
        assert "you may write inside the workspace" in whole and "write only" not in whole
