"""Data freezes: an immutable snapshot of every dataset, the codebook and a manifest in one zip, recorded with its
SHA-256; and its audited download."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from exports import formats
from exports.datasets import DATASETS
from exports.freeze_storage import freeze_dir, sha256_file
from exports.models import ExportFreeze
from exports.request import CODEBOOK
from exports.selectors import export_scope, freeze_get
from exports.services.exports import export_open
from participants.access import Actor
from trialsite.errors import ServiceError, TooManyRequests

# (file in the zip, dataset, request parameters)
FREEZE_FILES: tuple[tuple[str, str, dict[str, str]], ...] = (
    *((f"{name}.csv", name, {}) for name in DATASETS),
    ("scores_wide.csv", "scores", {"layout": "wide"}),
    ("codebook.csv", CODEBOOK, {}),
    ("codebook.json", CODEBOOK, {}),
)


def _require_allowance(creator: User | None, *, lock: bool = False) -> None:
    """At most ``EXPORT_FREEZES_PER_DAY`` freezes per user per UTC day (a freeze snapshots every dataset: it is
    heavy, and each one is kept). The system (a command) is not limited. Beyond it: a 429, nothing created."""
    if creator is None:
        return
    if lock:
        User.objects.select_for_update().filter(pk=creator.pk).first()
    now = timezone.now()
    day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    limit = settings.EXPORT_FREEZES_PER_DAY
    if ExportFreeze.objects.filter(created_by=creator, created_at__gte=day).count() >= limit:
        raise TooManyRequests(
            f"you have created {limit} data freezes today, the most a user may create in a day; "
            f"the next may be created from {(day + dt.timedelta(days=1)).isoformat().replace('+00:00', 'Z')}"
        )


def freeze_create(*, by: Actor, label: str = "") -> ExportFreeze:
    """Snapshot every dataset (CSV), the wide scores, the codebook and a manifest (row counts, SHA-256 per file) in
    one zip, read in one REPEATABLE READ transaction so the files agree with each other; record the zip's SHA-256."""
    scope, sites = export_scope(by, site_codes=[], study_codes=[], dates=False)
    creator = by if isinstance(by, User) and by.pk is not None else None
    _require_allowance(creator)
    now = timezone.now()
    directory = freeze_dir()
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    final = directory / f"freeze-{stamp}.zip"
    partial = directory / f".freeze-{stamp}.zip.partial"
    manifest: dict[str, Any] = {
        "created_at": now.isoformat(),
        "created_by": creator.get_username() if creator is not None else "system",
        "label": label,
        "sites": [s.code for s in sites],
        "includes_arm": scope.with_arm,
        "files": {},
    }
    date_time = now.timetuple()[:6]
    # Inside an enclosing transaction (a caller's, a test's) the isolation level is no longer ours to choose.
    outermost = not connection.in_atomic_block
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql" and outermost:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for filename, dataset, params in FREEZE_FILES:
                    export = export_open(
                        user=by, dataset=dataset, fmt=filename.rsplit(".", 1)[1], params=params, audit=False
                    )
                    digest = hashlib.sha256()
                    size = 0
                    info = zipfile.ZipInfo(filename, date_time=date_time)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with zf.open(info, "w") as entry:
                        for chunk in export.chunks:
                            digest.update(chunk)
                            size += len(chunk)
                            entry.write(chunk)
                    manifest["files"][filename] = {
                        "rows": export.progress.rows,
                        "bytes": size,
                        "sha256": digest.hexdigest(),
                    }
                info = zipfile.ZipInfo("manifest.json", date_time=date_time)
                zf.writestr(info, json.dumps(manifest, indent=2, sort_keys=True), compress_type=zipfile.ZIP_DEFLATED)
        sha = sha256_file(partial)
        os.replace(partial, final)
    finally:
        if partial.exists():
            partial.unlink()
    try:
        with transaction.atomic():
            # Checked again under a lock on the user's row: two requests at once cannot both take the last one.
            _require_allowance(creator, lock=True)
            freeze = ExportFreeze.objects.create(
                created_at=now,
                created_by=creator,
                label=label,
                site_codes=[s.code for s in sites],
                includes_arm=scope.with_arm,
                file_name=final.name,
                size=final.stat().st_size,
                sha256=sha,
                manifest=manifest,
            )
            audit_record(
                by=by,
                action=AuditEvent.Action.EXPORT,
                entity_type="export_freeze",
                entity_id=freeze.pk,
                changes=[
                    (
                        "freeze",
                        None,
                        {
                            "sha256": sha,
                            "sites": freeze.site_codes,
                            "arm": scope.with_arm,
                            "rows": {k: v["rows"] for k, v in manifest["files"].items()},
                        },
                    )
                ],
                sensitivity=AuditEvent.Sensitivity.ALLOCATION if scope.with_arm else "",
            )
    except BaseException:
        final.unlink(missing_ok=True)
        raise
    return freeze


def freeze_open(*, user: Actor, freeze_id: int) -> tuple[ExportFreeze, Iterator[bytes]]:
    """The freeze's zip, checked against its recorded SHA-256 before a byte is sent; the download is audited."""
    freeze = freeze_get(user, freeze_id)
    path = freeze_dir() / freeze.file_name
    if not path.exists() or sha256_file(path) != freeze.sha256:
        raise ServiceError("the freeze file is missing or does not match its recorded checksum", code="freeze_corrupt")
    with transaction.atomic():
        audit_record(
            by=user,
            action=AuditEvent.Action.EXPORT,
            entity_type="export_freeze",
            entity_id=freeze.pk,
            changes=[("download", None, {"sha256": freeze.sha256})],
            sensitivity=AuditEvent.Sensitivity.ALLOCATION if freeze.includes_arm else "",
        )

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while chunk := fh.read(formats.CHUNK):
                yield chunk

    return freeze, chunks()
