from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from audit.services import audit_record


class Command(BaseCommand):
    help = "Issue a new API token for a user (replacing any earlier one) and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    @transaction.atomic
    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {username!r}")
        Token.objects.filter(user=user).delete()
        token = Token.objects.create(user=user)
        # The key itself is never written to the audit trail.
        audit_record(
            by=None,
            action="action",
            entity_type="api_token",
            entity_id=user.pk,
            changes=[("token", None, "issued")],
            actor_username="manage.py issue_token",
        )
        self.stdout.write(token.key)
