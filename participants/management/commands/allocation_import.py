from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from participants import services
from participants.models import Study
from trialsite.errors import ServiceError


class Command(BaseCommand):
    help = "Import a study's allocation list from a statistician's CSV (columns stratum, sequence, arm[, block])."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study")
        parser.add_argument("csv_file")
        parser.add_argument("--by", required=True, help="username of the person importing the list")

    def handle(self, *args: Any, study: str, csv_file: str, by: str, **options: Any) -> None:
        study_obj = Study.objects.filter(code=study).first()
        user = get_user_model().objects.filter(username=by).first()
        if study_obj is None or user is None:
            raise CommandError(f"unknown {'study ' + study if study_obj is None else 'user ' + by}")
        try:
            text = Path(csv_file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(f"cannot read {csv_file}: {exc.strerror}") from None
        try:
            with transaction.atomic():
                allocation_list = services.allocation_list_import(study=study_obj, csv_text=text, by=user)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"allocation list {allocation_list.pk}: {allocation_list.slots.count()} slots imported")
