"""manage.py load_instrument FILE: validate an instrument file (e.g. a site's licensed item text) and store it as a
new InstrumentVersion. All or nothing: an invalid file stores nothing."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from assessments.definitions import InstrumentError
from assessments.services import instrument_version_load


class Command(BaseCommand):
    help = "Validate an instrument definition (JSON or YAML) and store it as a new version."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="Path to the instrument file.")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        try:
            row = instrument_version_load(path=file, by=None)
        except InstrumentError as exc:
            # CommandError exits with status 1; each line names the JSON path and the problem.
            raise CommandError(f"invalid instrument file {file}:\n" + "\n".join(f"  {e}" for e in exc.errors)) from exc
        self.stdout.write(self.style.SUCCESS(f"loaded {row.code} version {row.version} from {row.source}"))
