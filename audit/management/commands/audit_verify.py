from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.checkpoints import checkpoint_path
from audit.sequencer import chain_pending
from audit.verify import verify_all


class Command(BaseCommand):
    help = (
        "Verify the audit trail: chain the rows committed moments ago, then check the keyed hash chain (first broken "
        "link), each row's own MAC, and the signed checkpoints outside the database (AUDIT_CHECKPOINT_DIR): a bad "
        "signature, or a chain that no longer reaches a checkpoint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--checkpoint-dir", help="Folder of the checkpoints (default: AUDIT_CHECKPOINT_DIR).")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = options["checkpoint_dir"] or settings.AUDIT_CHECKPOINT_DIR
        chain_pending()
        result = verify_all(directory)
        problems = []
        if result.broken_id is not None:
            problems.append(
                f"audit chain broken at event {result.broken_id}: {result.problem} "
                f"({result.checked} events verified before it)"
            )
        problems.extend(result.checkpoint_problems)
        if problems:
            raise CommandError("\n".join(problems))
        unchained = f" ({result.unchained} committed since, not chained yet, intact)" if result.unchained else ""
        self.stdout.write(f"audit chain intact: {result.checked} events verified{unchained}")
        if result.last_checkpoint is None:
            self.stdout.write(f"no checkpoint found in {checkpoint_path(directory)}: run audit_checkpoint")
        else:
            last = result.last_checkpoint
            self.stdout.write(
                f"{result.checkpoints_checked} checkpoints match; the last ({last.at}) covers "
                f"{last.count} events up to event {last.head_id}"
            )
