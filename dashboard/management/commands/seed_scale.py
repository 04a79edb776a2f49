import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.sequencer import chain_pending
from audit.verify import verify_chain
from dashboard.scale import seed_scale


class _Bar:
    """One line per phase on stderr, redrawn in place: ``visits  [#########-----------]  4,000/10,000  3.1 s``."""

    WIDTH = 30

    def __init__(self, stream: Any) -> None:
        self.stream, self.phase, self.started, self.last = stream, "", time.monotonic(), 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self.phase:
            if self.phase:
                self.stream.write("\n")
            self.phase, self.started = phase, now
        elif done < total and now - self.last < 0.2:
            return
        self.last = now
        filled = self.WIDTH * done // total if total else self.WIDTH
        self.stream.write(
            f"\r{phase:<22} [{'#' * filled}{'-' * (self.WIDTH - filled)}] {done:>7,}/{total:,}  {now - self.started:6.1f} s"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.phase:
            self.stream.write("\n")


class Command(BaseCommand):
    help = (
        "Build a multi-site study with N participants in realistic states, audited, for load tests and benchmarks. "
        "Runs only with DEBUG on unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--participants", type=int, default=10_000)
        parser.add_argument("--sites", type=int, default=4)
        parser.add_argument("--seed", type=int, default=1, help="the same seed gives the same study")
        parser.add_argument("--study", default="SCALE", help="the new study's code (2-10 capitals or digits)")
        parser.add_argument("--force", action="store_true", help="run with DEBUG off (never on real data)")
        parser.add_argument("--verify", action="store_true", help="run audit_verify's chain check afterwards")

    def handle(self, *args: Any, **options: Any) -> None:
        # Thousands of made-up participants and staff accounts in a real study's database would be indistinguishable
        # from trial data: only on a development or benchmark database (DEBUG on), or when asked explicitly.
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_scale fills the database with made-up participants and runs only with DEBUG on; "
                "on a benchmark database with DEBUG off, pass --force"
            )
        if options["participants"] < 1 or not 1 <= options["sites"] <= 99:
            raise CommandError("--participants must be at least 1 and --sites between 1 and 99")
        bar = _Bar(sys.stderr)
        started = time.monotonic()
        try:
            scale = seed_scale(
                participants=options["participants"],
                sites=options["sites"],
                seed=options["seed"],
                code=options["study"],
                progress=bar,
            )
        finally:
            bar.close()
        took = time.monotonic() - started
        self.stdout.write(
            f"study {scale.study.code}: {len(scale.plans):,} participants at {len(scale.sites)} sites in {took:.1f} s"
        )
        if options["verify"]:
            started = time.monotonic()
            chain_pending()  # the rows written in bulk take their places in the chain (normally just after commit)
            result = verify_chain()
            took = time.monotonic() - started
            if not result.ok:
                raise CommandError(f"audit chain broken at event {result.broken_id}: {result.problem}")
            self.stdout.write(f"audit chain verified: {result.checked:,} events in {took:.1f} s")
