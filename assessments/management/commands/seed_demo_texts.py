"""manage.py seed_demo_texts: the demo's placeholder text packs (DEBUG only; see assessments/demo.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from assessments.demo import seed_demo_texts


class Command(BaseCommand):
    help = "Load placeholder text packs (built from the neutral labels) for the demo. DEBUG only."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("placeholder wording is for the demo only: run with DEBUG=true")
        loaded = seed_demo_texts()
        if loaded:
            self.stdout.write(f"Placeholder wording (demo only) loaded for: {', '.join(loaded)}")
