"""A session's transcript: append-only JSON lines, written as things happen.

The first line is a header (id, start time, project, model, settings, the
instructions sent); every later line is one record: an input or output item
exactly as sent or received (`item`), an agent event (`event`), a turn's
checkpoint (`turn`), an undo (`undo`), a compaction (`compaction`: the whole
new history) or old tool outputs shrunk (`shrink`: their new text by call_id). Each record is written and flushed at
once, and the file is fsynced at the end of every turn, so `kill -9` loses at
most the request in flight. On load, a half-written last line is skipped with
a warning. The file is created 0600 in a 0700 directory, and the API key's
value is replaced wherever it would appear.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REDACTED = "[redacted]"


class TranscriptError(Exception):
    """A transcript that cannot be used at all (missing, no header); one line for the user."""


class Transcript:
    """Raises OSError when the file cannot be opened; once a write fails (disk full, a file-size
    limit), `failure` says so in one line and later writes are dropped: the session decides."""

    def __init__(self, path: Path | None, secrets: list[str] | tuple[str, ...] = ()) -> None:
        self.path = path
        self.secrets = [s for s in secrets if s and len(s) >= 8]
        self.failure = ""
        self._lock = threading.Lock()
        self._file: Any = None
        if path is None:  # a session the user chose to go on with unrecorded
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file made by another umask
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        if self._file.tell() and not self._ends_with_newline():
            self._file.write("\n")  # a cut-off last line stays cut off; the next record starts clean

    def _failed(self, error: OSError) -> None:
        if not self.failure:
            self.failure = f"cannot record the session in {self.path}: {error.strerror or error}"
        try:
            self._file.close()
        except OSError:
            pass
        self._file = None

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # a file name that is not UTF-8: escaped, and read back as it was
            line = json.dumps(record, separators=(",", ":"))
        self._write_line(line)

    def write_item(self, encoded: str) -> None:
        """An input or output item, already encoded (coder.conversation.encode)."""
        self._write_line('{"type":"item","item":' + encoded + "}")

    def _write_line(self, line: str) -> None:
        for secret in self.secrets:
            line = line.replace(secret, REDACTED)
        with self._lock:  # records come from the turn's thread and a checkpoint's; a line stays whole
            if self._file is None:
                return
            try:
                self._file.write(line + "\n")
                self._file.flush()
            except OSError as e:
                self._failed(e)

    def sync(self) -> None:
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as e:
                self._failed(e)

    def close(self) -> None:
        self.sync()
        with self._lock:
            if self._file is not None and not self._file.closed:
                try:
                    self._file.close()
                except OSError as e:
                    self._failed(e)


@dataclass
class Loaded:
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def items(self) -> list[dict[str, Any]]:
        """The conversation as it stands at the end: items in order, with compactions and shrunk outputs applied."""
        items: list[dict[str, Any]] = []
        for record in self.records:
            kind = record.get("type")
            if kind == "item":
                items.append(record["item"])
            elif kind == "compaction" and isinstance(record.get("items"), list):
                items = list(record["items"])
            elif kind == "shrink" and isinstance(record.get("outputs"), dict):
                new = record["outputs"]
                items = [{**i, "output": new[i["call_id"]]} if i.get("type") == "function_call_output"
                         and i.get("call_id") in new else i for i in items]
        return items

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("type") == kind]


def load(path: Path) -> Loaded:
    """Read a transcript; a line that does not parse (a write cut off by a crash) is skipped with a warning."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TranscriptError(f"no transcript at {path}") from None
    except OSError as e:
        raise TranscriptError(f"cannot read {path}: {e.strerror}") from None
    lines = raw.split(b"\n")
    records: list[dict[str, Any]] = []
    warnings: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            where = "its last line" if number >= len(lines) - 1 else f"line {number}"
            warnings.append(f"{path.name}: {where} was cut off (the session ended abruptly); skipped it")
            continue
        if isinstance(record, dict):
            records.append(record)
    if not records or records[0].get("type") != "header":
        raise TranscriptError(f"{path} is not a coder transcript (no header)")
    return Loaded(records[0], records[1:], warnings)
