"""manage.py export DATASET --format F --out FILE [--user NAME] [filters]: the same stream as the API, to a file.

Without --user the export is the most restrictive view: every site, blinded (no arm column), no calendar dates. With
--user it is exactly what that user would get from the API (sites, blinding, the dates permission). Either way it is
audited like an API export. Progress goes to stderr, so stdout can carry the data (--out -)."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from exports import services
from exports.datasets import DATASETS
from exports.request import CODEBOOK, FORMATS
from trialsite.errors import ServiceError


class ProgressBar:
    """A hand-rolled progress bar (rows done of the total, rate), redrawn at most five times a second."""

    def __init__(self, stream: OutputWrapper, total: int | None, width: int = 30) -> None:
        self.stream, self.total, self.width = stream, total, width
        self.started = self.last = time.monotonic()

    def update(self, rows: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        rate = rows / max(now - self.started, 1e-9)
        if self.total:
            done = min(rows / self.total, 1.0)
            filled = int(done * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"\r[{bar}] {done:6.1%} {rows:,}/{self.total:,} rows {rate:,.0f}/s"
        else:
            text = f"\r{rows:,} rows {rate:,.0f}/s"
        self.stream.write(text, ending="")
        self.stream.flush()

    def finish(self, rows: int) -> None:
        self.update(rows, force=True)
        self.stream.write("")
        self.stream.flush()


class Command(BaseCommand):
    help = "Export a dataset (or the codebook) to a file, streamed, with a progress bar on stderr."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", choices=[*DATASETS, CODEBOOK])
        parser.add_argument("--format", dest="fmt", choices=FORMATS, default="csv")
        parser.add_argument("--out", required=True, help="file to write ('-' for stdout)")
        parser.add_argument("--user", help="apply this user's sites, blinding and permissions")
        parser.add_argument("--study")
        parser.add_argument("--site")
        parser.add_argument("--instrument")
        parser.add_argument("--visit-code", dest="visit_code")
        parser.add_argument("--changed-since", dest="changed_since")
        parser.add_argument("--layout", choices=["long", "wide"])
        parser.add_argument("--dates", choices=["iso"])
        parser.add_argument("--no-progress", action="store_true")

    def handle(
        self, *args: Any, dataset: str, fmt: str, out: str, user: str | None, no_progress: bool, **options: Any
    ) -> None:
        actor = None
        if user:
            try:
                actor = get_user_model().objects.get(username=user)
            except get_user_model().DoesNotExist:
                raise CommandError(f"no user {user!r}") from None
        names = ("study", "site", "instrument", "visit_code", "changed_since", "layout", "dates")
        params = {k: options[k] for k in names if options.get(k)}
        try:
            export = services.export_open(
                user=actor,
                dataset=dataset,
                fmt=fmt,
                params=params,
                actor_username=None if actor else "manage.py export",
            )
        except ServiceError as exc:
            details = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.field_errors.items())
            raise CommandError(f"{exc.message}{' (' + details + ')' if details else ''}") from None
        bar = None
        if not no_progress:
            bar = ProgressBar(self.stderr, export.count_rows())
        target = sys.stdout.buffer if out == "-" else open(out, "wb")  # noqa: SIM115 (closed below)
        try:
            for chunk in export.chunks:
                target.write(chunk)
                if bar:
                    bar.update(export.progress.rows)
        finally:
            if target is not sys.stdout.buffer:
                target.close()
        if bar:
            bar.finish(export.progress.rows)
        if out != "-":
            self.stderr.write(f"{export.progress.rows:,} rows written to {out}")
