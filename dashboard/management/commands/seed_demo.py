from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from dashboard.demo import seed_demo


class Command(BaseCommand):
    help = "Build the demo study (idempotent) and print the demo logins."

    def handle(self, *args: Any, **options: Any) -> None:
        logins = seed_demo()
        self.stdout.write("Demo logins (user / password / role):")
        for username, password, roles in logins:
            self.stdout.write(f"  {username:<24} {password:<36} {roles}")
        self.stdout.write(f"Staff dashboard: {settings.SITE_URL}/  (every login above signs in there)")
        self.stdout.write(f"Admin (superuser): {settings.SITE_URL}/admin/   API docs: {settings.SITE_URL}/api/docs/")
