"""Start-up checks of the studies' randomization: predictable blocks where the arm is open.

In an open-label study (everyone sees the arm) or a waitlist design (the arms' schedules differ, so the arm shows),
site staff know past allocations. With a single fixed block size, or blocks smaller than 4, they can then tell the
next allocation for part of each block; random block sizes of at least 4 (the generator's default) keep it
concealed. Block sizes are declared on the study's active allocation list (given when it is generated; counted from
the numbered blocks of an imported list).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db import DatabaseError

from participants import hooks, randomization
from participants.models import AllocationList


def _why_open(list_: AllocationList) -> str | None:
    study = list_.study
    if not study.blinded:
        return "open-label"
    facts = hooks.protocol_facts(study.protocol_code)
    if facts is not None and facts.schedule_differs_by_arm:
        return f"waitlist (protocol {study.protocol_code}: the arms' schedules differ)"
    return None


def allocation_block_warnings() -> list[checks.CheckMessage]:
    warnings: list[checks.CheckMessage] = []
    for list_ in AllocationList.objects.filter(active=True).select_related("study").order_by("study__code"):
        weakness = randomization.weak_block_sizes(list(list_.block_sizes or []))
        if weakness is None:
            continue
        design = _why_open(list_)
        if design is None:
            continue
        warnings.append(
            checks.Warning(
                f"study {list_.study.code} ({design}) randomizes with {weakness}: staff who know past allocations "
                "can predict the next one",
                hint="Generate a new list before the first randomization with random block sizes of at least 4 "
                "(manage.py allocation_generate without --block-sizes draws 4 or 6 for two arms).",
                obj=f"participants.AllocationList {list_.pk}",
                id="participants.W001",
            )
        )
    return warnings


def check_allocation_blocks(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    if not databases:
        return []
    try:
        return allocation_block_warnings()
    except DatabaseError:
        # Before the first migrate the table does not exist; migrate itself runs these checks.
        return []


def register() -> None:
    checks.register(check_allocation_blocks, "participants", checks.Tags.database)
