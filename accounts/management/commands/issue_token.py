from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services
from trialsite.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Issue a new API token for a user and print it. The token is shown this once: only its hash is stored. "
        "Earlier tokens stay valid until they expire or are revoked (account page)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--days", type=int, default=None, help="days until the token expires (default API_TOKEN_DAYS, 90)"
        )

    def handle(self, *args: Any, username: str, days: int | None, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {username!r}")
        try:
            token, secret = services.token_issue(
                user=user, days=days or settings.API_TOKEN_DAYS, by=None, actor_username="manage.py issue_token"
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Token {token.prefix}… for {username}, expires {token.expires_at:%Y-%m-%d %H:%M} UTC")
        self.stdout.write(secret)
