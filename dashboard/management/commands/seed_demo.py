from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dashboard.demo import seed_demo


class Command(BaseCommand):
    help = "Build the demo study (idempotent) and print the demo logins. Runs only with DEBUG on (make run)."

    def handle(self, *args: Any, **options: Any) -> None:
        # The demo's logins, a superuser among them, have passwords anyone can read in the source: never on a
        # deployment (DEBUG is off there).
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates logins with known passwords (a superuser among them) and runs only with DEBUG on; "
                "on a deployment, create staff with manage.py createsuperuser and the staff API"
            )
        logins = seed_demo()
        self.stdout.write("Demo logins (user / password / role):")
        for username, password, roles in logins:
            self.stdout.write(f"  {username:<24} {password:<36} {roles}")
        self.stdout.write(f"Staff dashboard: {settings.SITE_URL}/  (every login above signs in there)")
        self.stdout.write(f"Admin (superuser): {settings.SITE_URL}/admin/   API docs: {settings.SITE_URL}/api/docs/")
