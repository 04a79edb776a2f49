"""manage.py load_instrument_text FILE: validate a text pack (a site's validated wording of one instrument version in
one language) and store it as a new pack version. All or nothing: a refused pack stores nothing."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from assessments.services import instrument_text_load
from assessments.text_packs import TextPackError, decode_pack


class Command(BaseCommand):
    help = "Validate an instrument text pack (JSON) and store it as a new pack version."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="Path to the text pack file.")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        path = Path(file)
        try:
            data = decode_pack(path.read_bytes(), name=path.name)
            row, created = instrument_text_load(data=data, source=path.name, by=None)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        except TextPackError as exc:
            # CommandError exits with status 1; each line names the JSON path and the problem.
            raise CommandError(f"refused text pack {file}:\n" + "\n".join(f"  {e}" for e in exc.errors)) from exc
        what = "loaded" if created else "already loaded (nothing changed):"
        self.stdout.write(
            self.style.SUCCESS(
                f"{what} {row.instrument_code} v{row.instrument_version} text in '{row.language}', "
                f"version {row.version}, from {row.source}"
            )
        )
