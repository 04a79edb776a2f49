from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from audit.checkpoints import checkpoint_path, write_checkpoint


class Command(BaseCommand):
    help = "Append a signed checkpoint of the audit chain's head (id, hash, row count, time) to AUDIT_CHECKPOINT_DIR."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--checkpoint-dir", help="Folder of the checkpoints (default: AUDIT_CHECKPOINT_DIR).")
        parser.add_argument("--force", action="store_true", help="Write one even if the head has not moved.")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = options["checkpoint_dir"] or settings.AUDIT_CHECKPOINT_DIR
        record = write_checkpoint(directory, force=options["force"])
        if record is None:
            self.stdout.write(f"head unchanged since the last checkpoint in {checkpoint_path(directory)}")
        else:
            self.stdout.write(
                f"checkpoint written to {checkpoint_path(directory)}: {record['count']} events up to event "
                f"{record['head_id']}"
            )
