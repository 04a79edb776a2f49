"""No admin page can change a trial record. As a superuser, every registered admin of a trial model shows its rows,
and every change, add and delete URL (and the list's bulk delete) answers 403 with every trial table unchanged:
row counts and a checksum of each table before and after. The unblinded flag included, both ways.

Staff accounts: the admin changes no account's superuser, staff or active flag, groups or permissions (the audit's
finding 3: a superuser granted is_superuser there with no audit row); those change through the audited
``staff_account`` command, and what the admin does save (a new account, a changed e-mail) is audited."""

from __future__ import annotations

import datetime as dt
import io
import json
import zoneinfo
from pathlib import Path

import pytest
import time_machine
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import models, transaction
from django.urls import reverse

from assessments import services as assessment_services
from audit.models import AuditEvent
from notifications import services as notification_services
from participants import services as participant_services
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
    with transaction.atomic():
        participant_services.study_unblind(study=study, by=personas["investigator"], reason="database locked")
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


def test_re_blinding_in_the_admin_is_refused(client, seeded, study, personas):
    """Finding 3: a superuser re-blinded a study in the admin, after which "unblind once" could be repeated."""
    # The seed holds the investigator's approval; the unblinded statistician's is the second.
    with transaction.atomic():
        participant_services.study_unblind(study=study, by=personas["unblinded_statistician"], reason="locked")
    client.force_login(seeded)
    form = plausible_form(study)
    form.pop("unblinded", None)  # an unchecked box: the form that would re-blind
    before = table_state()
    response = client.post(reverse("admin:participants_study_change", args=[study.pk]), form)
    assert response.status_code == 403
    study.refresh_from_db()
    assert study.unblinded is True and study.blinded is True
    assert changed_tables(before, table_state()) == []


def _account_form(user, **overrides):
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def test_the_admin_grants_no_account_privilege_and_audits_what_it_saves(client, seeded, personas):
    """Finding 3: is_superuser granted in the admin with 0 audit rows. The flags, groups and permissions are
    read-only there; the e-mail the form may change is saved through the audited service."""
    client.force_login(seeded)
    target = personas["coordinator"]
    groups_before = sorted(target.groups.values_list("name", flat=True))
    other_group = Group.objects.exclude(name__in=groups_before).first() or Group.objects.create(name="spare")
    page = client.get(reverse("admin:auth_user_change", args=[target.pk]))
    assert page.status_code == 200 and b'name="is_superuser"' not in page.content
    last_id = AuditEvent.objects.order_by("id").last().id
    response = client.post(
        reverse("admin:auth_user_change", args=[target.pk]),
        _account_form(
            target,
            email="new@example.org",
            is_superuser="on",
            is_staff="on",
            groups=[other_group.pk],
            user_permissions=[],
        ),
    )
    assert response.status_code == 302, response.content[:2000]
    target.refresh_from_db()
    assert (target.is_superuser, target.is_staff, target.is_active) == (False, False, True)
    assert sorted(target.groups.values_list("name", flat=True)) == groups_before
    assert target.email == "new@example.org"
    [event] = AuditEvent.objects.filter(id__gt=last_id)
    assert (event.entity_type, event.entity_id, event.field, event.new_value) == (
        "user",
        str(target.pk),
        "email",
        "new@example.org",
    )
    assert event.actor == seeded
    assert not AuditEvent.objects.filter(field__in=["is_superuser", "is_staff", "groups"]).exists()


def test_an_account_added_in_the_admin_starts_without_privileges_and_is_audited(client, seeded):
    client.force_login(seeded)
    response = client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "newcomer",
            "password1": "a long and unusual passphrase 42",
            "password2": "a long and unusual passphrase 42",
            "usable_password": "true",
            "is_superuser": "on",
            "is_staff": "on",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    user = get_user_model().objects.get(username="newcomer")
    assert (user.is_superuser, user.is_staff, user.is_active) == (False, False, True)
    created = AuditEvent.objects.filter(entity_type="user", entity_id=str(user.pk), action="create")
    assert {e.field: e.new_value for e in created} == {
        "username": "newcomer",
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_superuser": False,
        "is_staff": False,
        "is_active": True,
    }
    assert {e.actor for e in created} == {seeded}


def test_accounts_and_groups_are_not_deleted_or_regranted_in_the_admin(client, seeded, personas):
    client.force_login(seeded)
    target = personas["rater"]
    group = target.groups.get()
    before = table_state()
    users_before = get_user_model().objects.count()
    attempts = [
        client.post(reverse("admin:auth_user_delete", args=[target.pk]), {"post": "yes"}),
        client.post(
            reverse("admin:auth_user_changelist"),
            {"action": "delete_selected", "_selected_action": [target.pk], "post": "yes"},
        ),
        client.post(reverse("admin:auth_group_change", args=[group.pk]), {"name": "renamed", "permissions": []}),
        client.post(reverse("admin:auth_group_delete", args=[group.pk]), {"post": "yes"}),
        client.post(reverse("admin:auth_group_add"), {"name": "new-group"}),
    ]
    # The account list offers no action at all: a bulk delete re-renders the list ("no action selected").
    assert [r.status_code for r in attempts] == [403, 200, 403, 403, 403]
    assert get_user_model().objects.count() == users_before and get_user_model().objects.filter(pk=target.pk).exists()
    assert (
        Group.objects.filter(pk=group.pk, name=group.name).exists()
        and not Group.objects.filter(name__in=["renamed", "new-group"]).exists()
    )
    assert changed_tables(before, table_state()) == []


def test_account_flags_change_through_the_audited_command(seeded, personas):
    target = personas["coordinator"]
    out = io.StringIO()
    call_command(
        "staff_account", target.username, "--superuser", "on", "--reason", "on-call admin", "--by", "root", stdout=out
    )
    target.refresh_from_db()
    assert target.is_superuser is True and "superuser=True" in out.getvalue()
    event = AuditEvent.objects.get(entity_type="user", entity_id=str(target.pk), field="is_superuser")
    assert (event.old_value, event.new_value, event.reason, event.actor) == (False, True, "on-call admin", seeded)
    assert event.action == "role_change"
    # Only a superuser may: a coordinator named as --by changes nothing.
    with pytest.raises(CommandError, match="only a superuser"):
        call_command("staff_account", "root", "--active", "off", "--reason", "x", "--by", personas["rater"].username)
    seeded.refresh_from_db()
    assert seeded.is_active is True
    assert not AuditEvent.objects.filter(entity_id=str(seeded.pk), field="is_active").exists()
