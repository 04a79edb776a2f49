"""The planner and the time rules, pure: no database, no clock."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import given
from hypothesis import strategies as st

from notifications import planner
from notifications.planner import ParticipantState, QuestionnaireGroup, VisitState, next_allowed
from notifications.rules import QuietHours, rules_for

LA = zoneinfo.ZoneInfo("America/Los_Angeles")
UTC = dt.UTC
QUIET = QuietHours(dt.time(21, 0), dt.time(8, 0))
RULES = rules_for("mapp-v1")


def at(y, m, d, hh, mm=0, tz=LA):
    return dt.datetime(y, m, d, hh, mm, tzinfo=tz)


def state(**kw) -> ParticipantState:
    base = dict(
        participant_id=1,
        active=True,
        time_zone="America/Los_Angeles",
        site_time_zone="America/Los_Angeles",
        channel="email",
        language="en",
    )
    return ParticipantState(**{**base, **kw})


def local(instant):
    return instant.astimezone(LA).strftime("%m-%d %H:%M")


@given(
    st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 12, 31), timezones=st.just(UTC)),  # noqa: DTZ001 (hypothesis takes naive bounds)
    st.sampled_from(["America/Los_Angeles", "America/New_York", "Europe/Madrid", "Australia/Lord_Howe"]),
)
def test_next_allowed_is_never_in_quiet_hours_never_earlier_and_minimal(instant, zone):
    tz = zoneinfo.ZoneInfo(zone)
    moved = next_allowed(instant, tz, QUIET)
    assert moved >= instant
    assert not QUIET.contains(moved.astimezone(tz).time())
    if moved != instant:
        # Moved only out of quiet hours, to 08:00 local (or the first real minute after it on a DST gap).
        assert QUIET.contains(instant.astimezone(tz).time())
        assert moved.astimezone(tz).time() == dt.time(8, 0)
        assert moved - instant <= dt.timedelta(hours=12)


def test_quiet_hours_edges():
    assert local(next_allowed(at(2026, 5, 1, 20, 59), LA, QUIET)) == "05-01 20:59"
    assert local(next_allowed(at(2026, 5, 1, 21, 0), LA, QUIET)) == "05-02 08:00"
    assert local(next_allowed(at(2026, 5, 2, 3, 0), LA, QUIET)) == "05-02 08:00"
    assert local(next_allowed(at(2026, 5, 2, 8, 0), LA, QUIET)) == "05-02 08:00"


def test_visit_offsets_are_wall_clock_across_both_dst_changes():
    spring = VisitState(id=1, code="B", kind="baseline", status="scheduled", scheduled_start=at(2026, 3, 9, 10))
    autumn = VisitState(id=2, code="C", kind="baseline", status="scheduled", scheduled_start=at(2026, 11, 2, 10))
    wanted = planner.plan(state(visits=(spring, autumn)), RULES, at(2026, 3, 1, 12))
    assert sorted(local(w.due_at) for w in wanted) == ["03-07 10:00", "03-09 08:00", "10-31 10:00", "11-02 08:00"]
    # The 48 h before 10:00 PDT on 9 March is 10:00 PST: 47 real hours.
    assert at(2026, 3, 9, 10) - min(w.due_at for w in wanted) == dt.timedelta(hours=47)


def test_a_reminder_pushed_past_its_visit_by_quiet_hours_is_dropped():
    early = VisitState(id=1, code="B", kind="baseline", status="scheduled", scheduled_start=at(2026, 5, 4, 7, 30))
    wanted = planner.plan(state(visits=(early,)), RULES, at(2026, 5, 1, 12))
    assert [w.key.split(":")[2] for w in wanted] == ["48h"]


def test_no_questionnaire_reminder_on_a_dosing_day():
    dose = VisitState(id=9, code="DOSE1", kind="dosing", status="scheduled", scheduled_start=at(2026, 5, 3, 9))
    planned_dose = VisitState(id=10, code="DOSE2", kind="dosing", status="planned", target_date=dt.date(2026, 5, 6))
    cancelled = VisitState(id=11, code="DOSE3", kind="dosing", status="cancelled", target_date=dt.date(2026, 5, 1))
    q = QuestionnaireGroup(visit_id=5, opens_at=at(2026, 5, 1, 0), closes_at=at(2026, 5, 20, 23, 59))
    wanted = planner.plan(state(visits=(dose, planned_dose, cancelled), questionnaires=(q,)), RULES, at(2026, 4, 1, 12))
    q_due = sorted(local(w.due_at) for w in wanted if w.template == "questionnaire_reminder")
    # Open on 1 May 08:00 (the cancelled dosing does not count); +2 days is dosing day 3 May -> 4 May; +5 days is
    # 6 May, a planned dosing day -> 7 May.
    assert q_due == ["05-01 08:00", "05-04 08:00", "05-07 08:00"]


def test_reminders_after_the_window_closes_are_not_planned_and_a_backlog_collapses():
    q = QuestionnaireGroup(visit_id=5, opens_at=at(2026, 5, 1, 0), closes_at=at(2026, 5, 3, 23, 59))
    wanted = planner.plan(state(questionnaires=(q,)), RULES, at(2026, 4, 1, 12))
    assert [w.key.split(":")[2] for w in wanted] == ["open", "2d"]
    # Planned late (5 May is past both): nothing, the window has closed.
    assert planner.plan(state(questionnaires=(q,)), RULES, at(2026, 5, 4, 1)) == []
    # Planned on 3 May 09:00: "open" was overtaken by "2d"; only the latest is wanted.
    wanted = planner.plan(state(questionnaires=(q,)), RULES, at(2026, 5, 3, 9))
    assert [w.key.split(":")[2] for w in wanted] == ["2d"]


def test_inactive_or_unreachable_participants_get_nothing_and_keys_are_stable():
    v = VisitState(id=1, code="B", kind="baseline", status="scheduled", scheduled_start=at(2026, 5, 9, 10))
    assert planner.plan(state(visits=(v,), active=False), RULES, at(2026, 5, 1, 12)) == []
    assert planner.plan(state(visits=(v,), channel=None), RULES, at(2026, 5, 1, 12)) == []
    a = planner.plan(state(visits=(v,)), RULES, at(2026, 5, 1, 12))
    b = planner.plan(state(visits=(v,), channel="sms", language="es"), RULES, at(2026, 5, 2, 12))
    assert (
        [w.key for w in a]
        == [w.key for w in b]
        == [
            "visit:1:48h:2026-05-09T17:00:00Z",  # keyed by the visit's slot: a moved visit plans new keys
            "visit:1:2h:2026-05-09T17:00:00Z",
        ]
    )
    assert {(w.channel, w.language) for w in b} == {("sms", "es")}


def test_escalation_to_each_coordinator_at_site_morning():
    o = planner.OverdueGroup(visit_id=3, visit_code="BASELINE", target_date=dt.date(2026, 5, 1), count=2)
    wanted = planner.plan(
        state(overdue=(o,), coordinators=(7, 8), site_time_zone="America/New_York"), RULES, at(2026, 4, 1, 12)
    )
    assert [(w.recipient_user_id, w.channel, w.template) for w in wanted] == [
        (7, "email", "coordinator_overdue"),
        (8, "email", "coordinator_overdue"),
    ]
    # Three days after the target date, 08:00 at the site (New York).
    assert wanted[0].due_at == dt.datetime(2026, 5, 4, 8, 0, tzinfo=zoneinfo.ZoneInfo("America/New_York"))


def test_a_blinded_coordinator_is_told_only_of_visits_their_schedule_lists_under_the_code_it_shows():
    """A waitlist arm's own session is not escalated to a coordinator who may not see the arm, and the primary
    endpoint is named by its neutral code; a recipient who may see the arm gets both as they are."""
    own_session = planner.OverdueGroup(visit_id=3, visit_code="INT1B", target_date=dt.date(2026, 5, 1), count=1)
    endpoint = planner.OverdueGroup(
        visit_id=4, visit_code="WAIT_END", target_date=dt.date(2026, 5, 1), count=2, blinded_code="PRIMARY"
    )
    wanted = planner.plan(
        state(overdue=(own_session, endpoint), coordinators=(7, 8), blinded_recipients=(7,)), RULES, at(2026, 4, 1, 12)
    )
    told = sorted((w.recipient_user_id, w.context["visit_id"], w.context["visit_code"]) for w in wanted)
    assert told == [(7, 4, "PRIMARY"), (8, 3, "INT1B"), (8, 4, "WAIT_END")]


def test_shipped_rule_files_are_valid():
    from notifications.rules import check_rule_files

    assert check_rule_files() == []
    assert RULES.escalation_overdue_days == 3 and [o.code for o in RULES.visit_before] == ["48h", "2h"]


def test_a_link_sent_on_request_stands_for_the_reminders_due_up_to_a_day_after_it():
    opens = at(2026, 5, 1, 9)
    plain = QuestionnaireGroup(visit_id=5, opens_at=opens, closes_at=at(2026, 5, 20, 23, 59))
    keys = [w.key.split(":")[2] for w in planner.plan(state(questionnaires=(plain,)), RULES, at(2026, 4, 1, 12))]
    assert keys == ["open", "2d", "5d"]
    # Sent an hour after opening: no "it is open" message on top of it; the later nudges stay.
    asked = QuestionnaireGroup(
        visit_id=5, opens_at=opens, closes_at=at(2026, 5, 20, 23, 59), link_requested_at=at(2026, 5, 1, 10)
    )
    wanted = planner.plan(state(questionnaires=(asked,)), RULES, at(2026, 5, 1, 10))
    assert [w.key.split(":")[2] for w in wanted] == ["2d", "5d"]
    # Sent on day 1.5: it also stands for the 2-day reminder (due within a day of it), not the 5-day one.
    late = QuestionnaireGroup(
        visit_id=5, opens_at=opens, closes_at=at(2026, 5, 20, 23, 59), link_requested_at=at(2026, 5, 2, 21)
    )
    wanted = planner.plan(state(questionnaires=(late,)), RULES, at(2026, 5, 2, 21))
    assert [w.key.split(":")[2] for w in wanted] == ["5d"]
    # The edge: a reminder due exactly a day after the request is covered; a minute later it is not.
    for minutes, expected in ((0, ["5d"]), (1, ["2d", "5d"])):
        edge = QuestionnaireGroup(
            visit_id=5,
            opens_at=opens,
            closes_at=at(2026, 5, 20, 23, 59),
            link_requested_at=at(2026, 5, 2, 9) - dt.timedelta(minutes=minutes),
        )
        wanted = planner.plan(state(questionnaires=(edge,)), RULES, at(2026, 5, 1, 8))
        assert [w.key.split(":")[2] for w in wanted] == expected
