from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services


class Command(BaseCommand):
    help = "Remove a user's TOTP device (e.g. a lost phone); they enrol a new one at their next sign-in. Audited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--reason", required=True)

    def handle(self, *args: Any, username: str, reason: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        removed = services.totp_reset(user=user, by=None, actor_username="manage.py reset_second_factor", reason=reason)
        self.stdout.write(f"Removed {removed} device(s) of {username}.")
