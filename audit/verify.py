"""Walk the chain and report the first broken link."""

from __future__ import annotations

from dataclasses import dataclass

from audit.chain import GENESIS, event_hash, hashed_fields
from audit.models import AuditEvent


@dataclass
class VerifyResult:
    checked: int
    broken_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify_chain(batch_size: int = 2000) -> VerifyResult:
    prev = GENESIS
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=batch_size):
        if event.prev_hash != prev:
            return VerifyResult(
                checked, event.id, "prev_hash does not match the previous event (a row was removed or reordered)"
            )
        if event_hash(prev, hashed_fields(event)) != event.hash:
            return VerifyResult(checked, event.id, "content does not match its hash (the row was altered)")
        prev = event.hash
        checked += 1
    return VerifyResult(checked)
