"""manage.py rescore --reason "...": recompute every stored score from the raw answers after a scoring fix. Each
changed score is audited with its old and new value and the reason."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from assessments.services import responses_rescore
from trialsite.errors import ServiceError


class Command(BaseCommand):
    help = "Recompute stored scores from the raw answers (audited)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--reason", required=True, help="Why the scores are recomputed (goes to the audit trail).")
        parser.add_argument("--instrument", help="Only this instrument code.")

    def handle(self, *args: Any, reason: str, instrument: str | None = None, **options: Any) -> None:
        try:
            seen, changed = responses_rescore(by=None, reason=reason, instrument_code=instrument)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"rescored {seen} responses; {changed} changed"))
