"""manage.py load_protocol FILE: validate a protocol file and store it as a new ProtocolVersion (all or nothing)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from scheduling.protocol import ProtocolError
from scheduling.services import protocol_version_load


class Command(BaseCommand):
    help = "Validate a protocol definition (JSON) and store it as a new version. An invalid file stores nothing."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="Path to the protocol JSON file.")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        try:
            row = protocol_version_load(path=file, by=None)
        except ProtocolError as exc:
            # CommandError exits with status 1; each line names the JSON path and the problem.
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"loaded {row.code} version {row.version} ({row.title})"))
