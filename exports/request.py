"""An export request: the dataset, the format and the filters, parsed and checked before the first byte is produced,
so a bad filter is a 400 naming the parameter, never a half-written file. Pure: nothing here reads the caller's
scope (exports.selectors.export_scope does) or writes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from exports.columns import Filters
from exports.datasets import ACCEPTS, DATASETS
from exports.errors import NotFound
from trialsite.errors import ServiceError

FORMATS = ("csv", "json", "sav", "dta")
CODEBOOK = "codebook"
_VISIT_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")


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


def _one(params: Mapping[str, Any], name: str) -> str | None:
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
