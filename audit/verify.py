"""Walk the keyed chain, check it against the signed checkpoints, and report what is broken.

The chain is walked in its own order (``seq``, the order the sequencer chained the rows); each row's hash covers its id
too, so neither removing nor reordering rows, nor renumbering their ids, goes unnoticed. Rows still waiting for their
place (committed moments ago) are checked by their own keyed MAC."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audit.chain import GENESIS, content_mac, hashed_fields, link_hash
from audit.checkpoints import Checkpoint, read_checkpoints
from audit.keys import audit_key
from audit.models import AuditEvent


@dataclass
class VerifyResult:
    checked: int
    # Rows not chained yet when the walk ran (their MACs were checked).
    unchained: int = 0
    broken_id: int | None = None
    problem: str = ""
    checkpoints_checked: int = 0
    checkpoint_problems: list[str] = field(default_factory=list)
    last_checkpoint: Checkpoint | None = None

    @property
    def ok(self) -> bool:
        return self.broken_id is None and not self.checkpoint_problems


def verify_chain(
    batch_size: int = 2000, checkpoints: Sequence[Checkpoint] = (), *, key: bytes | None = None
) -> VerifyResult:
    """One pass over the chain: each row's prev_hash is the previous row's hash and its hash is the keyed hash of its
    content. For each checkpoint given, the row it names must be there with the hash and the row count it recorded."""
    key = key if key is not None else audit_key()
    wanted: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        if checkpoint.head_id:
            wanted.setdefault(checkpoint.head_id, []).append(checkpoint)
    result = VerifyResult(0)
    prev = GENESIS
    chained = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")
    for event in chained.iterator(chunk_size=batch_size):
        if event.prev_hash != prev:
            result.broken_id = event.id
            result.problem = "prev_hash does not match the previous event (a row was removed or reordered)"
            break
        if link_hash(key, prev, event) != event.hash or content_mac(key, hashed_fields(event)) != event.mac:
            result.broken_id = event.id
            result.problem = "content does not match its keyed hash (the row was altered or re-hashed)"
            break
        prev = event.hash
        result.checked += 1
        for checkpoint in wanted.pop(event.id, ()):
            result.checkpoints_checked += 1
            if checkpoint.head_hash != event.hash:
                result.checkpoint_problems.append(
                    f"checkpoint line {checkpoint.line} ({checkpoint.at}): event {event.id} no longer has the hash "
                    f"this checkpoint recorded (the chain was rewritten)"
                )
            elif checkpoint.count != result.checked:
                result.checkpoint_problems.append(
                    f"checkpoint line {checkpoint.line} ({checkpoint.at}): {result.checked} events up to event "
                    f"{event.id}, the checkpoint recorded {checkpoint.count} (rows were removed)"
                )
    if result.broken_id is None:
        for event in AuditEvent.objects.filter(seq__isnull=True).order_by("id").iterator(chunk_size=batch_size):
            if content_mac(key, hashed_fields(event)) != event.mac:
                result.broken_id = event.id
                result.problem = "content does not match its keyed MAC (the row, not yet chained, was altered)"
                break
            result.unchained += 1
    if result.broken_id is None:
        # Whatever is left names rows the chain no longer reaches: they were cut from its tail.
        for head_id, group in sorted(wanted.items()):
            for checkpoint in group:
                result.checkpoints_checked += 1
                result.checkpoint_problems.append(
                    f"checkpoint line {checkpoint.line} ({checkpoint.at}): event {head_id} is missing; the chain "
                    f"({result.checked} events) ends behind this checkpoint ({checkpoint.count} events): rows were "
                    f"deleted from its tail"
                )
    return result


def verify_all(
    checkpoint_dir: Path | str | None = None, batch_size: int = 2000, *, key: bytes | None = None
) -> VerifyResult:
    """The chain and the checkpoints outside the database (``AUDIT_CHECKPOINT_DIR``): every checkpoint's signature
    must hold under the audit key, and the chain must still reach it unchanged."""
    checkpoints, problems = read_checkpoints(checkpoint_dir, key=key)
    result = verify_chain(batch_size, checkpoints, key=key)
    result.checkpoint_problems = problems + result.checkpoint_problems
    result.last_checkpoint = max(checkpoints, key=lambda c: c.head_id, default=None)
    return result
