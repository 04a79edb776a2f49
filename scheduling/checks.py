"""Start-up checks: a broken protocol must stop a deploy, not surface as a 500 on the first randomization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db import DatabaseError


def check_shipped(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from scheduling.protocol import check_shipped_protocols

    return [
        checks.Error(problem, hint="Fix the shipped protocol file.", obj="scheduling.protocols", id="scheduling.E001")
        for problem in check_shipped_protocols()
    ]


def check_stored(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Stored versions that fail validation (e.g. an instrument was removed from the library after loading)."""
    if not databases:
        return []
    from scheduling.selectors import stored_protocol_problems

    try:
        problems = stored_protocol_problems()
    except DatabaseError:
        # Before the first migrate the table does not exist; migrate itself runs these checks.
        return []
    return [
        checks.Error(
            problem,
            hint="Load a corrected protocol as a new version; stored versions are never edited.",
            obj="scheduling.ProtocolVersion",
            id="scheduling.E002",
        )
        for problem in problems
    ]


def register() -> None:
    checks.register(check_shipped, "scheduling")
    checks.register(check_stored, "scheduling", checks.Tags.database)
