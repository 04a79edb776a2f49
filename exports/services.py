"""Exports: parse and check a request, open the stream in the requested format, audit it when it ends; data freezes.

Every request is validated (and its scope and blinding decided) before the first byte is produced, so a bad filter is
a 400 naming the parameter, never a half-written file. The rows are then produced lazily while the response streams;
the audit row is written when the stream ends, in its own transaction, with the row count.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import status

from audit.models import AuditEvent
from audit.services import audit_record
from exports import codebook as cb
from exports import formats
from exports.datasets import (
    ACCEPTS,
    DATASETS,
    TEXT,
    WIDE_INDEX,
    Filters,
    Scope,
    python_rows,
    python_wide_rows,
    select_sql,
    wide_columns,
    wide_select_sql,
)
from exports.formats import Progress, Var
from exports.models import ExportFreeze
from exports.selectors import export_scope
from participants.access import arm_visible_in_export as arm_visible
from participants.access import export_site_ids
from trialsite.errors import PermissionDeniedError, ServiceError

FORMATS = ("csv", "json", "sav", "dta")
CODEBOOK = "codebook"
_VISIT_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")


class NotFound(ServiceError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


@dataclass(frozen=True)
class ExportRequest:
    dataset: str
    fmt: str
    filters: Filters = Filters()
    sites: tuple[str, ...] = ()
    studies: tuple[str, ...] = ()
    wide: bool = False
    dates: bool = False

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dataset": self.dataset, "format": self.fmt}
        if self.wide:
            out["layout"] = "wide"
        if self.dates:
            out["dates"] = "iso"
        filters = self.filters.as_dict()
        if self.sites:
            filters["site"] = list(self.sites)
        if self.studies:
            filters["study"] = list(self.studies)
        out["filters"] = filters
        return out


@dataclass
class Export:
    request: ExportRequest
    scope: Scope
    variables: list[Var]
    content_type: str
    filename: str
    chunks: Iterator[bytes]
    progress: Progress = field(default_factory=Progress)
    total: Callable[[], int | None] | None = None

    def count_rows(self) -> int | None:
        """The number of rows the stream will hold (one extra COUNT query; for progress bars), None if unknown."""
        return self.total() if self.total else None


def _values(params: Mapping[str, Any], name: str) -> list[str]:
    if hasattr(params, "getlist"):
        raw = params.getlist(name)
    else:
        value = params.get(name)
        raw = [] if value in (None, "") else (list(value) if isinstance(value, list | tuple) else [value])
    out: list[str] = []
    for value in raw:
        text = str(value)
        if "\x00" in text:
            # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the query.
            raise ServiceError(f"bad {name}", field_errors={name: ["Null characters are not allowed."]})
        out.extend(part.strip() for part in text.split(",") if part.strip())
    return out


def _one(params, name: str) -> str | None:
    values = _values(params, name)
    if len(values) > 1:
        raise ServiceError(f"give one {name}", field_errors={name: ["give a single value"]})
    return values[0] if values else None


def parse_request(dataset: str, fmt: str, params: Mapping[str, Any]) -> ExportRequest:
    if dataset != CODEBOOK and dataset not in DATASETS:
        raise NotFound(
            f"no dataset {dataset!r}", field_errors={"dataset": [f"one of {', '.join([*DATASETS, CODEBOOK])}"]}
        )
    allowed_formats = ("csv", "json") if dataset == CODEBOOK else FORMATS
    if fmt not in allowed_formats:
        raise ServiceError(f"unknown format {fmt!r}", field_errors={"format": [f"one of {', '.join(allowed_formats)}"]})
    accepted = {"dates"} if dataset == CODEBOOK else set(ACCEPTS[dataset]) | {"dates"}
    if dataset == "scores":
        accepted.add("layout")
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ServiceError(
            "unknown or inapplicable parameter",
            field_errors={
                p: [f"not a parameter of {dataset}; accepted: {', '.join(sorted(accepted))}"] for p in unknown
            },
        )
    dates = _one(params, "dates")
    if dates not in (None, "iso"):
        raise ServiceError("bad dates", field_errors={"dates": ["the only value is 'iso'"]})
    layout = _one(params, "layout")
    if layout not in (None, "long", "wide"):
        raise ServiceError("bad layout", field_errors={"layout": ["'long' (default) or 'wide'"]})
    instruments = _values(params, "instrument")
    if instruments:
        from assessments.library import instrument_codes

        known = set(instrument_codes())
        bad = [c for c in instruments if c not in known]
        if bad:
            raise ServiceError("unknown instrument", field_errors={"instrument": [f"no instrument {', '.join(bad)}"]})
    visit_codes = _values(params, "visit_code")
    bad = [c for c in visit_codes if not _VISIT_CODE.match(c)]
    if bad:
        raise ServiceError("bad visit code", field_errors={"visit_code": ["letters, digits, '_', '.', '-' (max 40)"]})
    changed_since = None
    raw = _one(params, "changed_since")
    if raw is not None:
        try:
            changed_since = parse_datetime(raw.replace(" ", "+"))
        except ValueError:
            changed_since = None
        if changed_since is None:
            raise ServiceError(
                "bad changed_since", field_errors={"changed_since": ["an ISO 8601 instant, e.g. 2025-01-31T00:00:00Z"]}
            )
        if timezone.is_naive(changed_since):
            raise ServiceError(
                "bad changed_since", field_errors={"changed_since": ["give the UTC offset (e.g. Z or +02:00)"]}
            )
    return ExportRequest(
        dataset=dataset,
        fmt=fmt,
        filters=Filters(
            instruments=tuple(instruments) or None,
            visit_codes=tuple(visit_codes) or None,
            changed_since=changed_since,
        ),
        sites=tuple(_values(params, "site")),
        studies=tuple(_values(params, "study")),
        wide=layout == "wide",
        dates=dates == "iso",
    )


def _on_postgres(force_python: bool) -> bool:
    return connection.vendor == "postgresql" and not force_python


def export_open(
    *,
    user,
    dataset: str,
    fmt: str,
    params: Mapping[str, Any] | None = None,
    force_python: bool = False,
    audit: bool = True,
    actor_username: str | None = None,
) -> Export:
    """Check the request and the caller's scope; return the (lazy) stream. Raises ServiceError subclasses."""
    request = parse_request(dataset, fmt, params or {})
    scope, _sites = export_scope(
        user, site_codes=list(request.sites), study_codes=list(request.studies), dates=request.dates
    )
    pg = _on_postgres(force_python)
    progress = Progress()
    total = None

    if dataset == CODEBOOK:
        rows = cb.codebook_rows(scope)
        variables = [Var(f, TEXT, f) for f in cb.FIELDS]
        total = rows.__len__
        if fmt == "json":
            chunks = _json_document(rows, progress)
        else:
            chunks = formats.csv_rows(variables, cb.as_table(rows), progress)
        name = "codebook"
    else:
        if request.wide:
            wide = wide_columns(cb.instruments(), only=request.filters.instruments)
            index = [c for c in WIDE_INDEX if c.role == "base" or (c.role == "arm" and scope.with_arm)]
            variables = [Var(c.name, c.type, c.label, dict(c.values) if c.values else None) for c in index] + [
                Var(w.name, w.type, w.label, dict(w.values) if w.values and w.type != TEXT else None) for w in wide
            ]

            def query(escape: bool):
                return wide_select_sql(wide, scope, request.filters, escape=escape)

            def py_rows():
                return python_wide_rows(wide, scope, request.filters)

            name = "scores_wide"
        else:
            ds = DATASETS[dataset]
            cols = ds.visible(scope)
            variables = [Var(c.name, c.type, c.label, dict(c.values) if c.values else None) for c in cols]

            def query(escape: bool):
                return select_sql(ds, scope, request.filters, escape=escape)

            def py_rows():
                return python_rows(ds, scope, request.filters)

            name = dataset

        def rows():
            return formats.pg_rows(query(False)) if pg else py_rows()

        if pg:

            def total():
                return _count(query(False))

        if fmt == "csv":
            chunks = formats.csv_copy(query(True), progress) if pg else formats.csv_rows(variables, rows(), progress)
        elif fmt == "json":
            chunks = formats.json_rows(variables, rows(), progress)
        else:
            chunks = _stat_chunks(fmt, variables, rows, progress, label=f"trialsite {name}")

    def finish(p: Progress) -> None:
        if audit:
            _audit_export(user, request, scope, p, actor_username=actor_username)

    return Export(
        request=request,
        scope=scope,
        variables=variables,
        content_type=formats.CONTENT_TYPES[fmt],
        filename=f"{name}.{fmt}",
        chunks=formats.finishing(chunks, progress, finish),
        progress=progress,
        total=total,
    )


def _count(query) -> int:
    from psycopg import sql

    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT count(*) FROM ({}) t").format(query).as_string(connection.connection))
        return cursor.fetchone()[0]


def _json_document(rows: Sequence[dict[str, Any]], progress: Progress) -> Iterator[bytes]:
    progress.rows = len(rows)
    yield json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8")


def _stat_chunks(fmt, variables, rows, progress, *, label) -> Iterator[bytes]:
    path = formats.stat_file(fmt, variables, rows(), progress, label=label)
    yield from formats.file_chunks(path)


def _audit_export(user, request: ExportRequest, scope: Scope, progress: Progress, *, actor_username=None) -> None:
    details = request.describe() | {
        "rows": progress.rows,
        "complete": progress.complete,
        "arm": scope.with_arm,
        "site_ids": list(scope.site_ids),
    }
    # Its own transaction: the stream is over, and this row must commit whatever the request does next.
    with transaction.atomic():
        audit_record(
            by=user,
            action=AuditEvent.Action.EXPORT,
            entity_type="export",
            entity_id=request.dataset + ("_wide" if request.wide else ""),
            changes=[("export", None, details)],
            sensitivity=AuditEvent.Sensitivity.ALLOCATION if scope.with_arm else "",
            actor_username=actor_username,
        )


# ----------------------------------------------------------------------------------------------------------- freezes


def freeze_dir() -> Path:
    path = Path(getattr(settings, "FREEZE_DIR", None) or Path(settings.VAR_DIR) / "freezes")
    path.mkdir(parents=True, exist_ok=True)
    return path


FREEZE_FILES: tuple[tuple[str, str, dict[str, str]], ...] = (
    *((f"{name}.csv", name, {}) for name in DATASETS),
    ("scores_wide.csv", "scores", {"layout": "wide"}),
    ("codebook.csv", CODEBOOK, {}),
    ("codebook.json", CODEBOOK, {}),
)


def freeze_create(*, by, label: str = "") -> ExportFreeze:
    """Snapshot every dataset (CSV), the wide scores, the codebook and a manifest (row counts, SHA-256 per file) in
    one zip, read in one REPEATABLE READ transaction so the files agree with each other; record the zip's SHA-256."""
    scope, sites = export_scope(by, site_codes=[], study_codes=[], dates=False)
    now = timezone.now()
    directory = freeze_dir()
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    final = directory / f"freeze-{stamp}.zip"
    partial = directory / f".freeze-{stamp}.zip.partial"
    manifest: dict[str, Any] = {
        "created_at": now.isoformat(),
        "created_by": by.get_username() if getattr(by, "pk", None) else "system",
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
        sha = _sha256_file(partial)
        os.replace(partial, final)
    finally:
        if partial.exists():
            partial.unlink()
    try:
        with transaction.atomic():
            freeze = ExportFreeze.objects.create(
                created_at=now,
                created_by=by if getattr(by, "pk", None) else None,
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


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def freeze_visible(user, freeze: ExportFreeze, *, site_ids: set[int] | None = None, sites_by_code=None) -> bool:
    """A freeze is for users who could export every site it holds now, and (if it holds arms) see them there."""
    from participants.models import Site, Study

    allowed = export_site_ids(user) if site_ids is None else site_ids
    by_code = sites_by_code if sites_by_code is not None else {s.code: s.id for s in Site.objects.all()}
    ids = [by_code.get(code) for code in freeze.site_codes]
    if any(i is None or i not in allowed for i in ids):
        return False
    if freeze.includes_arm:
        studies = Study.objects.filter(sites__in=ids).distinct()
        return arm_visible(user, ids, studies)
    return True


def freezes_for(user) -> list[ExportFreeze]:
    from participants.models import Site

    allowed = export_site_ids(user)
    if not allowed:
        raise PermissionDeniedError("exports are for statisticians, investigators and administrators")
    by_code = {s.code: s.id for s in Site.objects.all()}
    return [f for f in ExportFreeze.objects.all() if freeze_visible(user, f, site_ids=allowed, sites_by_code=by_code)]


def freeze_open(*, user, freeze_id: int) -> tuple[ExportFreeze, Iterator[bytes]]:
    """The freeze's zip, checked against its recorded SHA-256 before a byte is sent; the download is audited."""
    freeze = ExportFreeze.objects.filter(pk=freeze_id).first()
    if freeze is None or not freeze_visible(user, freeze):
        if not export_site_ids(user):
            raise PermissionDeniedError("exports are for statisticians, investigators and administrators")
        raise NotFound("no such freeze")
    path = freeze_dir() / freeze.file_name
    if not path.exists() or _sha256_file(path) != freeze.sha256:
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
