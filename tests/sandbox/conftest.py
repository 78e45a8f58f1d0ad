"""What the sandbox tests share: each backend in turn, a private temp dir, a small tree of files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import backends
from tests.conftest import require_backend


@pytest.fixture(params=["landlock", "bwrap"])
def backend(request) -> backends.Backend:
    require_backend(request.param)
    return backends.get(request.param)


@pytest.fixture
def temp(tmp_path: Path) -> Path:
    """The session's private temp directory (a writable root)."""
    d = tmp_path / "private-tmp"
    d.mkdir()
    return d


@pytest.fixture
def tree(workspace: Path) -> Path:
    """src/a.py (a scope's target), src/b.py (another session's target), other.py."""
    (workspace / "src").mkdir()
    (workspace / "src" / "a.py").write_text("a = 1\n")
    (workspace / "src" / "b.py").write_text("b = 1\n")
    (workspace / "other.py").write_text("other = 1\n")
    return workspace
