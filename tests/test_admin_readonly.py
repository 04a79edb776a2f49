"""No admin page can change a trial record. As a superuser, every registered admin of a trial model shows its rows,
and every change, add and delete URL (and the list's bulk delete) answers 403 with every trial table unchanged:
row counts and a checksum of each table before and after. The unblinded flag included."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from pathlib import Path

import pytest
import time_machine
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import models, transaction
from django.urls import reverse

from assessments import services as assessment_services
from notifications import services as notification_services
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.conftest import TRIAL_APPS, changed_tables, table_state
from tests.factories import UserFactory
from trialsite.admin import ReadOnlyAdmin

pytestmark = pytest.mark.django_db

HIGH_CSSRS = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}
INSTRUMENT_FILE = Path(__file__).resolve().parent.parent / "assessments" / "instruments" / "PCL5.json"


def trial_admins() -> list[tuple[type[models.Model], admin.ModelAdmin]]:
    return sorted(
        (
            (model, model_admin)
            for model, model_admin in admin.site._registry.items()
            if model._meta.app_label in TRIAL_APPS
        ),
        key=lambda pair: pair[0]._meta.label,
    )


@pytest.fixture
def seeded(make_participant, alice, personas, study, pdx):
    """At least one row of every trial model that has an admin, each made through the services."""
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    participant = make_participant("randomized")
    if not Visit.objects.filter(participant=participant).exists():
        scheduling_services.schedule_generate(participant=participant, by=None)
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    baseline = Visit.objects.get(participant=participant, code="BASELINE")
    with transaction.atomic():
        scheduling_services.room_create(site=pdx, name="Room 1", overnight_capable=True, by=root)
        scheduling_services.deviation_record(
            participant=participant, type="procedure", description="vitals taken late", by=alice, visit=screen
        )
        assessment_services.response_create_staff(
            participant=participant, visit=screen, instrument_code="CSSRS_SCREEN", answers=HIGH_CSSRS, by=alice
        )
    noon = dt.datetime.combine(baseline.window_start, dt.time(12), tzinfo=zoneinfo.ZoneInfo(participant.time_zone))
    with time_machine.travel(noon, tick=False), transaction.atomic():
        assessment_services.link_issue(visit=baseline, by=alice)
    notification_services.notifications_reconcile(participant_id=participant.pk)
    call_command("load_instrument", str(INSTRUMENT_FILE), stdout=open("/dev/null", "w"))  # noqa: SIM115
    return root


def _changed_text(field: models.Field, obj: models.Model, value: object) -> object:
    """The text with a letter added, or as it is when that would not pass the field's validation (a code, a time
    zone): the form must be one a writable admin would accept."""
    changed = f"{value or ''}X"
    try:
        field.clean(changed, obj)
    except ValidationError:
        return value
    return changed


def plausible_form(obj: models.Model) -> dict[str, object]:
    """The object's own values, each changed a little (flags flipped, texts extended, numbers raised), as the
    admin's change form would post them."""
    data: dict[str, object] = {"_save": "Save"}
    for field in obj._meta.concrete_fields:
        if field.primary_key or not field.editable:
            continue
        value = field.value_from_object(obj)
        name = field.name
        if isinstance(field, models.BooleanField):
            if not value:
                data[name] = "on"  # an unchecked box is absent from the form: flipping True means leaving it out
        elif isinstance(field, models.DateTimeField):
            moved = (value or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) + dt.timedelta(days=1)
            data[f"{name}_0"], data[f"{name}_1"] = moved.date().isoformat(), moved.time().strftime("%H:%M:%S")
        elif isinstance(field, models.DateField):
            data[name] = ((value or dt.date(2026, 1, 1)) + dt.timedelta(days=1)).isoformat()
        elif isinstance(field, models.JSONField):
            data[name] = json.dumps(value if value not in (None, "") else {})
        elif isinstance(field, models.IntegerField | models.FloatField) and not field.is_relation:
            data[name] = (value or 0) + 1
        elif field.is_relation:
            data[name] = value
        elif field.choices:
            data[name] = value
        else:
            data[name] = _changed_text(field, obj, value)
    for field in obj._meta.many_to_many:
        data[field.name] = [related.pk for related in field.value_from_object(obj)]
    return {name: "" if value is None else value for name, value in data.items()}


def test_every_trial_model_admin_is_the_read_only_base():
    admins = trial_admins()
    assert len(admins) >= 15
    assert [m._meta.label for m, a in admins if not isinstance(a, ReadOnlyAdmin)] == []
    # Staff accounts stay in Django's own admin (out of scope here).
    assert get_user_model() in admin.site._registry and Group in admin.site._registry


def test_no_admin_url_changes_a_trial_record(client, seeded):
    client.force_login(seeded)  # logging in writes its own audit row: before the first snapshot
    admins = trial_admins()
    empty = [model._meta.label for model, _ in admins if not model._default_manager.exists()]
    assert empty == [], f"seed a row of every model with an admin: {empty}"
    for model, _model_admin in admins:
        meta = model._meta
        obj = model._default_manager.order_by("pk").first()
        prefix = f"admin:{meta.app_label}_{meta.model_name}"
        change = reverse(f"{prefix}_change", args=[obj.pk])
        changelist = reverse(f"{prefix}_changelist")

        # It shows: the list and the record's page answer, and the record's page offers no save button.
        listing = client.get(changelist)
        assert listing.status_code == 200, meta.label
        page = client.get(change)
        assert page.status_code == 200, meta.label
        assert b'name="_save"' not in page.content, meta.label

        before = table_state()
        attempts = {
            "change": client.post(change, plausible_form(obj)),
            "add": client.post(reverse(f"{prefix}_add"), plausible_form(obj)),
            "delete": client.post(reverse(f"{prefix}_delete", args=[obj.pk]), {"post": "yes"}),
            "delete_selected": client.post(
                changelist, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
            ),
            "add page": client.get(reverse(f"{prefix}_add")),
        }
        for what, response in attempts.items():
            assert response.status_code in (302, 403), (meta.label, what, response.status_code)
        assert changed_tables(before, table_state()) == [], meta.label


def test_the_unblinded_flag_cannot_be_set_in_the_admin(client, seeded, study):
    client.force_login(seeded)
    form = plausible_form(study)
    form["unblinded"] = "on"
    response = client.post(reverse("admin:participants_study_change", args=[study.pk]), form)
    assert response.status_code == 403
    study.refresh_from_db()
    assert study.unblinded is False and study.blinded is True
