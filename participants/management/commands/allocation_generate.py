from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from participants import services
from participants.models import Study
from trialsite.errors import ServiceError


class Command(BaseCommand):
    help = "Generate a study's allocation list (stratified permuted blocks, seeded and reproducible)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="study code, e.g. SAM")
        parser.add_argument("--strata", required=True, help="comma-separated strata, e.g. PDX,NYC")
        parser.add_argument(
            "--block-sizes",
            default="",
            help="comma-separated block sizes (multiples of the number of arms); default: two sizes of at least 4, "
            "e.g. 4,6 for two arms, each block's size drawn at random",
        )
        parser.add_argument("--per-stratum", type=int, required=True, help="slots per stratum")
        parser.add_argument("--seed", required=True, help="keep it as secret as the list")
        parser.add_argument("--by", required=True, help="username of the person generating the list")

    def handle(
        self,
        *args: Any,
        study: str,
        strata: str,
        block_sizes: str,
        per_stratum: int,
        seed: str,
        by: str,
        **options: Any,
    ) -> None:
        study_obj = Study.objects.filter(code=study).first()
        user = get_user_model().objects.filter(username=by).first()
        if study_obj is None or user is None:
            raise CommandError(f"unknown {'study ' + study if study_obj is None else 'user ' + by}")
        try:
            sizes = [int(size) for size in block_sizes.split(",")] if block_sizes.strip() else None
            with transaction.atomic():
                allocation_list = services.allocation_list_generate(
                    study=study_obj,
                    strata=[s.strip() for s in strata.split(",") if s.strip()],
                    block_sizes=sizes,
                    per_stratum=per_stratum,
                    seed=seed,
                    by=user,
                )
        except ValueError:
            raise CommandError("--block-sizes must be whole numbers separated by commas") from None
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"allocation list {allocation_list.pk}: {allocation_list.slots.count()} slots")
