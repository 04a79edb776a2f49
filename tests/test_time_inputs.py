"""Every time an API request carries is an instant with its offset (trialsite.fields.OffsetDateTimeField), or, on the
safety endpoints, a site-local time read in the participant's site zone (safety.serializers.SiteLocalDateTimeField).
None falls back to DRF's default, which took a time without an offset as UTC (issue 13, finding 10)."""

from __future__ import annotations

import importlib
import inspect

import pytest
from rest_framework import serializers

from safety.serializers import SiteLocalDateTimeField
from trialsite.fields import NO_OFFSET, OffsetDateTimeField

MODULES = [
    f"{app}.{module}"
    for app in ("participants", "scheduling", "assessments", "safety", "notifications", "exports")
    for module in ("serializers", "api", "analysis_api")
]


def input_serializers() -> list[type[serializers.Serializer]]:
    found = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, serializers.Serializer) and cls.__name__.endswith("Input") and cls not in found:
                found.append(cls)
    return found


def test_every_time_an_api_request_carries_names_its_zone():
    classes = input_serializers()
    assert len(classes) > 20
    loose = [
        f"{cls.__module__}.{cls.__name__}.{name}"
        for cls in classes
        for name, field in cls().fields.items()
        if isinstance(field, serializers.DateTimeField)
        and not isinstance(field, OffsetDateTimeField | SiteLocalDateTimeField)
    ]
    assert loose == []


@pytest.mark.parametrize(
    ("value", "ok"),
    [("2026-03-01T09:00:00-08:00", True), ("2026-03-01T17:00:00Z", True), ("2026-03-01T09:00:00", False)],
)
def test_an_instant_without_an_offset_is_refused(value, ok):
    field = OffsetDateTimeField()
    if ok:
        assert field.run_validation(value).isoformat() == "2026-03-01T17:00:00+00:00"
    else:
        with pytest.raises(serializers.ValidationError) as refused:
            field.run_validation(value)
        assert refused.value.detail == [NO_OFFSET]
