"""What assessments does when another app writes. Participants and scheduling never import assessments (arrows go one
way); AssessmentsConfig.ready() registers these with their hooks. Each runs inside the other app's transaction, so
the change and its consequences here commit together."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q

from assessments import services
from assessments.library import instrument_catalogue, stored_instrument_catalogue
from assessments.models import Administration, ParticipantLink, Response
from participants import hooks as participant_hooks
from participants import services as participant_services
from participants.access import Actor
from participants.models import Participant
from scheduling import blinded_view, hooks
from scheduling.models import Visit


def on_visits_changed(*, participant: Participant, visits: Sequence[Visit], by: Actor) -> None:
    """Visits created, re-planned, rescheduled or cancelled: their administrations follow."""
    services.administrations_follow_visits(participant=participant, visits=visits, by=by)


def on_participant_withdrawn(*, participant: Participant, level: str, by: Actor, **kwargs: object) -> None:
    """A withdrawal revokes the participant's links and closes what is still due, at every level."""
    services.links_revoke_for_participant(participant=participant, by=by, reason=f"participant withdrawn ({level})")
    services.administrations_close_for_withdrawal(participant=participant, level=level, by=by)


def history_hidden(user: Actor, participant: Participant) -> Q | None:
    """The records of questionnaires at visits a blinded viewer's history leaves out
    (``scheduling.blinded_view.unlisted_visit_ids``): their administrations and responses."""
    ids = blinded_view.unlisted_visit_ids(user, participant)
    if not ids:
        return None
    adms = [str(pk) for pk in Administration.objects.filter(visit_id__in=ids).values_list("pk", flat=True)]
    responses = [str(pk) for pk in Response.objects.filter(visit_id__in=ids).values_list("pk", flat=True)]
    links = [str(pk) for pk in ParticipantLink.objects.filter(visit_id__in=ids).values_list("pk", flat=True)]
    return (
        Q(entity_type="administration", entity_id__in=adms)
        | Q(entity_type__in=("response", "response_scores"), entity_id__in=responses)
        | Q(entity_type__in=("participant_link", "draft_answers"), entity_id__in=links)
    )


_registered = False


def register() -> None:
    """Register the hooks once (ready() may run again, e.g. in tests)."""
    global _registered
    if _registered:
        return
    _registered = True
    participant_services.on_withdrawn(on_participant_withdrawn)
    hooks.on_visits_changed(on_visits_changed)
    participant_hooks.on_history_read(history_hidden)
    hooks.register_instrument_catalogue(instrument_catalogue)
    hooks.register_instrument_catalogue(stored_instrument_catalogue, stored=True)
