"""manage.py effect_sizes [--user NAME] [--study S] [--site S] [--scale X] [--from-visit V --to-visit V]
[--format table|json]: the same figures as GET /api/v1/analysis/effect-sizes/.

Without --user the view is the most restrictive one: every site, blinded (pooled figures only). With --user it is
exactly what that user would get from the API (sites, blinding)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from exports.analysis.effect_sizes import effect_sizes
from trialsite.errors import ServiceError

COLUMNS = (
    *("study", "scale", "from_visit", "to_visit", "arm", "n"),
    *("mean_change", "sd_change", "d_z", "ci_low", "ci_high", "p_value"),
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}"
    return str(value)


class Command(BaseCommand):
    help = "Pre/post effect sizes (n, mean and SD of change, d_z with its 95% CI, paired t-test p) per scale."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="apply this user's sites and blinding")
        parser.add_argument("--study")
        parser.add_argument("--site")
        parser.add_argument("--scale", help="e.g. SCS_cs,SCS_ucs,CAPS5_total")
        parser.add_argument("--from-visit", dest="from_visit")
        parser.add_argument("--to-visit", dest="to_visit")
        parser.add_argument("--format", dest="fmt", choices=["table", "json"], default="table")

    def handle(self, *args: Any, user: str | None, fmt: str, **options: Any) -> None:
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"no user {user!r}")
        params = {k: options[k] for k in ("study", "site", "scale", "from_visit", "to_visit") if options.get(k)}
        try:
            report = effect_sizes(actor, params)
        except ServiceError as exc:
            details = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.field_errors.items())
            raise CommandError(f"{exc.message}{' (' + details + ')' if details else ''}") from None
        if fmt == "json":
            self.stdout.write(json.dumps(report, indent=1))
            return
        columns = [c for c in COLUMNS if c != "arm" or any("arm" in r for r in report["results"])]
        rows = [list(columns)] + [
            ["pooled" if c == "arm" and r.get(c) is None else _cell(r.get(c)) for c in columns]
            for r in report["results"]
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
        for row in rows:
            self.stdout.write("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        self.stdout.write(f"\nd_z CI: {report['ci_method']}, {int(report['confidence'] * 100)}%; change = to - from.")
