"""Big-file figures for the file tools: wall time and peak memory of one call each.

Run with the Python of an environment where coder is installed:
    .venv/bin/python bench/tools.py [--runs 3] [--edit-mb 40] [--log-mb 200]

Generates, in a temp dir, a source file of --edit-mb MB and a log of --log-mb MB,
then times, each in a fresh subprocess (so peak RSS is the call's own):
- edit_file: a one-line edit in the middle of the source file;
- edit_file: a failed edit there (old_string close to, but not in, the file);
- read_file: 100 lines at offset 2,500,000 of the log.
Prints the median wall time, the peak RSS of the process (ru_maxrss) and how much
of it came after the imports (the call's own), as a multiple of the file size.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Source as people write it: unique lines between many repeated ones (blank lines, `return result`).
SOURCE_BLOCK = (
    "def step_{i}(alpha, beta):\n"
    '    """Step {i} of the pipeline."""\n'
    "    result = compute(alpha, beta={b}, scale={a})\n"
    "    if result is None:\n"
    "        return None\n"
    "    return result\n"
    "\n"
    "\n"
)
LOG_LINE = "2024-05-01T12:{m:02d}:{s:02d}Z INFO w{w} req {i} ok {ms}ms /api/items/{i}\n"
EDIT_BLOCK = 100_000  # in the middle of a 40 MB source file
READ_OFFSET, READ_LIMIT = 2_500_000, 100


def source_block(i: int) -> str:
    return SOURCE_BLOCK.format(i=i, a=i % 97, b=i * 7)


def target(i: int) -> str:
    """The unique line of block i that the edits aim at."""
    return source_block(i).splitlines(keepends=True)[2]


def generate(path: Path, megabytes: int, line) -> int:
    """Write `line(i)` until the file is `megabytes` MB; returns the number of lines."""
    goal, size, i, lines = megabytes * 1_000_000, 0, 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while size < goal:
            chunk = "".join(line(j) for j in range(i, i + 10_000))
            f.write(chunk)
            size += len(chunk)
            lines += chunk.count("\n")
            i += 10_000
    return lines


def log_line(i: int) -> str:
    return LOG_LINE.format(m=i // 60 % 60, s=i % 60, i=i, w=i % 8, ms=i % 997)


CASES = {
    "edit": ("edit_file", lambda: {
        "path": "big.py", "old_string": target(EDIT_BLOCK), "replace_all": None,
        "new_string": target(EDIT_BLOCK).replace("compute(", "compute_fast("),
    }),
    "failed edit": ("edit_file", lambda: {
        "path": "big.py", "replace_all": None, "new_string": "x",
        "old_string": target(EDIT_BLOCK).replace(")", ", extra)") + "    if result is None:\n",
    }),
    "late read": ("read_file", lambda: {"path": "app.log", "offset": READ_OFFSET, "limit": READ_LIMIT}),
}


def child(case: str, workspace: Path) -> None:
    """One call in this process; prints its figures as JSON."""
    from coder.tools import TOOLS
    from coder.tools.base import Output, ToolContext, ToolError
    from sandbox.policy import Mode, Policy

    temp = workspace.parent / "private-tmp"
    temp.mkdir(exist_ok=True)
    ctx = ToolContext(policy=Policy.for_workspace(workspace, Mode.WORKSPACE_WRITE, temp_dir=temp, deny_read=()))
    name, make_args = CASES[case]
    tool = TOOLS[name]
    args = tool.validate_args(make_args())
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    try:
        out = tool.run(ctx, args)
        ok, text = True, out.text if isinstance(out, Output) else out
    except ToolError as e:
        ok, text = False, str(e)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"wall": wall, "peak_kb": peak, "base_kb": base, "ok": ok, "head": text[:200],
                      "chars": len(text)}))


def run_case(case: str, workspace: Path, pristine: Path, runs: int) -> list[dict]:
    results = []
    for _ in range(runs):
        shutil.copyfile(pristine, workspace / "big.py")
        proc = subprocess.run([sys.executable, __file__, "--child", case, str(workspace)],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode:
            raise SystemExit(f"{case} failed:\n{proc.stderr}")
        results.append(json.loads(proc.stdout.splitlines()[-1]))
    return results


def report(case: str, results: list[dict], size: int) -> None:
    walls = [r["wall"] for r in results]
    peak = max(r["peak_kb"] for r in results) / 1024
    own = max(r["peak_kb"] - r["base_kb"] for r in results) / 1024
    first = results[0]
    print(f"{case:<12} {statistics.median(walls):7.2f} s (min {min(walls):.2f}, max {max(walls):.2f})  "
          f"peak RSS {peak:6.0f} MB, {own:6.0f} MB after imports ({own * 1024 * 1024 / size:.1f}x the "
          f"file)  ok={first['ok']} output {first['chars']} chars")
    print(f"{'':<12} {first['head'].splitlines()[0][:110] if first['head'] else ''}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--edit-mb", type=int, default=40)
    parser.add_argument("--log-mb", type=int, default=200)
    parser.add_argument("--child", nargs=2, metavar=("CASE", "WORKSPACE"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        return child(opts.child[0], Path(opts.child[1]))
    with tempfile.TemporaryDirectory(prefix="coder-bench-") as tmp:
        workspace = Path(tmp, "ws").resolve()
        workspace.mkdir()
        pristine = Path(tmp, "big.py.orig")
        lines = generate(pristine, opts.edit_mb, source_block)
        lines_log = generate(workspace / "app.log", opts.log_mb, log_line)
        src_size, log_size = pristine.stat().st_size, (workspace / "app.log").stat().st_size
        print(f"source file {src_size / 1e6:.1f} MB, {lines} lines; log {log_size / 1e6:.1f} MB, {lines_log} lines; "
              f"{opts.runs} runs each, a fresh process per run")
        for case in CASES:
            size = log_size if case == "late read" else src_size
            report(case, run_case(case, workspace, pristine, opts.runs), size)


if __name__ == "__main__":
    main()
