"""manage.py load_demographic_form FILE: check a site's demographic form definition (JSON) and store it as a new
version, which staff then fill in and the exports describe. All or nothing: an invalid file stores nothing."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from participants.services import demographic_form_load
from trialsite.errors import ServiceError


class Command(BaseCommand):
    help = "Check a demographic form definition (JSON) and store it as a new version."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="Path to the form definition.")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        try:
            with open(file, encoding="utf-8") as fh:
                definition = json.load(fh)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        try:
            row, created = demographic_form_load(definition=definition, source=file, by=None)
        except ServiceError as exc:
            lines = [line for errors in exc.field_errors.values() for line in errors]
            raise CommandError(f"{exc.message} ({file}):\n" + "\n".join(f"  {e}" for e in lines)) from exc
        verb = "loaded" if created else "already loaded:"
        self.stdout.write(self.style.SUCCESS(f"{verb} {row.code} version {row.version} from {file}"))
