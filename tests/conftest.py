"""Fixtures shared by every test: a real workspace on disk and a tool context over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from coder.tools.base import ToolContext
from sandbox.env import scrub
from sandbox.policy import Mode, Policy

import os


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws.resolve()


@pytest.fixture
def secret_dir(tmp_path: Path) -> Path:
    """A stand-in for ~/.ssh: on the deny list of every test policy."""
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "id_rsa").write_text("PRIVATE KEY\n")
    return d.resolve()


def make_ctx(workspace: Path, tmp_path: Path, mode: Mode = Mode.WORKSPACE_WRITE, deny=()) -> ToolContext:
    temp_dir = tmp_path / "private-tmp"
    temp_dir.mkdir(exist_ok=True)
    policy = Policy.for_workspace(workspace, mode, temp_dir=temp_dir, deny_read=tuple(deny))
    env = scrub(os.environ)
    env["TMPDIR"] = str(temp_dir)
    return ToolContext(policy=policy, env=env, default_timeout=30)


@pytest.fixture
def ctx(workspace: Path, tmp_path: Path, secret_dir: Path) -> ToolContext:
    return make_ctx(workspace, tmp_path, deny=(secret_dir,))


@pytest.fixture
def ro_ctx(workspace: Path, tmp_path: Path, secret_dir: Path) -> ToolContext:
    return make_ctx(workspace, tmp_path, Mode.READ_ONLY, deny=(secret_dir,))
