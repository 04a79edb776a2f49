from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from participants import services
from trialsite.errors import ServiceError

CHOICES = {"on": True, "off": False}


class Command(BaseCommand):
    help = (
        "Set a staff account's superuser, staff or active flag, with a reason (audited: old and new value). The "
        "Django admin shows these flags read-only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the account to change")
        parser.add_argument("--superuser", choices=sorted(CHOICES), help="grant (on) or take away (off)")
        parser.add_argument("--staff", choices=sorted(CHOICES), help="the Django staff flag")
        parser.add_argument("--active", choices=sorted(CHOICES), help="off locks the account out")
        parser.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        parser.add_argument("--by", required=True, help="username of the superuser making the change")

    def handle(
        self,
        *args: Any,
        username: str,
        superuser: str | None,
        staff: str | None,
        active: str | None,
        reason: str,
        by: str,
        **options: Any,
    ) -> None:
        users = get_user_model().objects
        user, actor = users.filter(username=username).first(), users.filter(username=by).first()
        if user is None or actor is None:
            raise CommandError(f"unknown user {username if user is None else by}")
        if superuser is None and staff is None and active is None:
            raise CommandError("give at least one of --superuser, --staff, --active")
        try:
            with transaction.atomic():
                user = services.staff_account_flags_set(
                    user=user,
                    by=actor,
                    reason=reason,
                    is_superuser=CHOICES.get(superuser or ""),
                    is_staff=CHOICES.get(staff or ""),
                    is_active=CHOICES.get(active or ""),
                )
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"{user.get_username()}: superuser={user.is_superuser} staff={user.is_staff} active={user.is_active}"
        )
