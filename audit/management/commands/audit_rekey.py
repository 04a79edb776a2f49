from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from audit.chain import key_id, link_hash
from audit.checkpoints import checkpoint_path, write_checkpoint
from audit.keys import audit_key
from audit.models import AuditEvent
from audit.rekey import rekey_chain
from audit.sequencer import chain_pending
from audit.verify import verify_all


class Command(BaseCommand):
    help = (
        "Replace the audit key: verify the chain and its checkpoints under the old key, re-hash every row under the "
        "current AUDIT_KEY, set the old checkpoints aside and write a new one. Run as the migration role (the owner "
        "of the audit table), with the service stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--old-key-file", required=True, help="A file holding the key the chain is keyed with now.")
        parser.add_argument("--checkpoint-dir", help="Folder of the checkpoints (default: AUDIT_CHECKPOINT_DIR).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            old_key = Path(options["old_key_file"]).read_text(encoding="utf-8").strip().encode("utf-8")
        except OSError as exc:
            raise CommandError(f"--old-key-file: cannot read {options['old_key_file']!r} ({exc.strerror})") from exc
        new_key = audit_key()
        if not old_key or old_key == new_key:
            raise CommandError("the old key is empty or the same as AUDIT_KEY: nothing to replace")
        directory = Path(options["checkpoint_dir"] or settings.AUDIT_CHECKPOINT_DIR)
        # Rows written before the service stopped and not chained yet were sealed under the old key: chain them first.
        chain_pending(key=old_key)
        result = verify_all(directory, key=old_key)
        if not result.ok:
            problems = [f"broken at event {result.broken_id}: {result.problem}"] if result.broken_id else []
            raise CommandError(
                "the chain does not verify under the old key; nothing was changed:\n"
                + "\n".join(problems + result.checkpoint_problems)
            )
        with transaction.atomic():
            summary = rekey_chain(
                AuditEvent,
                lambda prev, event: link_hash(old_key, prev, event),
                lambda prev, event: link_hash(new_key, prev, event),
                mac_key=new_key,
                note=f"the audit key was replaced (old key id {key_id(old_key)}, new key id {key_id(new_key)})",
            )
        path = checkpoint_path(directory)
        if path.exists():
            path.rename(path.with_name(f"checkpoints-{key_id(old_key)}.jsonl"))
        write_checkpoint(directory, force=True)
        self.stdout.write(
            f"re-keyed {summary['rows']} events; the old checkpoints are kept as checkpoints-{key_id(old_key)}.jsonl"
        )
