"""Signed checkpoints of the audit chain, kept outside the database.

A checkpoint is one JSON line appended to ``<AUDIT_CHECKPOINT_DIR>/checkpoints.jsonl``: the head row's id and hash,
the number of rows chained up to it (the head's ``seq``), the time and the key's public id, signed with HMAC-SHA256 under the audit key. A keyed chain alone
cannot show rows cut from its tail (the shorter chain still verifies); a checkpoint written before the cut can.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from audit.chain import key_id, sign, signature_ok
from audit.keys import audit_key
from audit.models import AuditEvent
from audit.sequencer import chain_pending

FILE_NAME = "checkpoints.jsonl"
FIELDS = ("head_id", "head_hash", "count", "at", "key_id")


@dataclass(frozen=True)
class Checkpoint:
    line: int
    head_id: int
    head_hash: str
    count: int
    at: str


def checkpoint_path(directory: Path | str | None = None) -> Path:
    return Path(directory if directory is not None else settings.AUDIT_CHECKPOINT_DIR) / FILE_NAME


def _head() -> dict[str, Any]:
    """The chain's head row; its place ``seq`` is the number of rows chained up to it (1, 2, 3, ... without gaps)."""
    head = AuditEvent.objects.filter(seq__isnull=False).order_by("-seq").values_list("id", "hash", "seq").first()
    if head is None:
        return {"head_id": 0, "head_hash": "", "count": 0}
    return {"head_id": int(head[0]), "head_hash": str(head[1]), "count": int(head[2] or 0)}


def _last_line(path: Path) -> str:
    """The file's last line, read from its end (the file grows by one line every few minutes for years)."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        position = fh.tell()
        chunk = b""
        while position > 0 and chunk.count(b"\n") < 2:
            step = min(4096, position)
            position -= step
            fh.seek(position)
            chunk = fh.read(step) + chunk
    lines = [line for line in chunk.split(b"\n") if line.strip()]
    return lines[-1].decode("utf-8", "replace") if lines else ""


def write_checkpoint(directory: Path | str | None = None, *, force: bool = False) -> dict[str, Any] | None:
    """Chain the rows waiting for their place, then append a signed checkpoint of the head; None when the head has not
    moved since the last one (unless ``force``)."""
    chain_pending()
    head = _head()
    path = checkpoint_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not force and path.exists():
        try:
            last = json.loads(_last_line(path) or "{}")
        except ValueError:
            last = {}
        if last.get("head_id") == head["head_id"] and last.get("head_hash") == head["head_hash"]:
            return None
    key = audit_key()
    payload = {**head, "at": timezone.now().isoformat(timespec="seconds"), "key_id": key_id(key)}
    record = {**payload, "sig": sign(key, payload)}
    data = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
    # O_APPEND: one write per line, never a rewrite of earlier lines.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return record


def read_checkpoints(
    directory: Path | str | None = None, *, key: bytes | None = None
) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints whose signature holds under the key (default: the audit key), and a problem for every line that
    does not."""
    path = checkpoint_path(directory)
    if not path.exists():
        return [], []
    key = key if key is not None else audit_key()
    current_key_id = key_id(key)
    good: list[Checkpoint] = []
    problems: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                payload = {name: record[name] for name in FIELDS}
                signature = str(record["sig"])
                checkpoint = Checkpoint(
                    number, int(record["head_id"]), str(record["head_hash"]), int(record["count"]), str(record["at"])
                )
            except (ValueError, KeyError, TypeError):
                problems.append(f"checkpoint line {number}: unreadable")
                continue
            if payload["key_id"] != current_key_id:
                problems.append(f"checkpoint line {number}: signed under another key (key id {payload['key_id']})")
            elif not signature_ok(key, payload, signature):
                problems.append(f"checkpoint line {number}: signature does not match (the line was altered)")
            else:
                good.append(checkpoint)
    return good, problems
