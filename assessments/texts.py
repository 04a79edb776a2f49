"""The wording a participant is shown, read: which text pack is in force for an instrument and a language, and which
self-report questionnaires are held because none is (writes: ``assessments.services.texts``). Nothing here writes.

A participant never sees a neutral label ("Item 1"): a self-report administration whose instrument has no pack in the
participant's language is *held*. It is not offered on the participant's link, no link is issued for it alone, no
reminder is planned for it, and staff see "validated text missing" on the dashboard and through the API. Being held is
a fact of the library and the participant's language, computed at read time: loading a pack releases every
administration it covers without a write to them.

An administration answered under a pack is pinned to it (``Administration.text_pack``, set when the first answer is
saved), so the wording never changes under a participant half-way through; a newer pack serves the questionnaires
not started yet.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from assessments.definitions import Instrument
from assessments.library import instrument_get, instruments_all
from assessments.models import Administration, InstrumentText
from assessments.text_packs import TextPack, has_own_text, pack_from_definition, parse_text_pack
from assessments.windows import SELF
from participants import access
from participants.access import Actor
from trialsite.roles import Role

HOLD_REASON = "validated_text_missing"
_parsed: dict[tuple[int, str, str, str], TextPack] = {}


def site_languages() -> list[str]:
    """The languages a participant may be contacted in (settings.LANGUAGES): the languages a pack may declare."""
    return [code for code, _name in settings.LANGUAGES]


def language_of(participant: object) -> str:
    """A participant's language: their contact's, else the site default. Reads ``participant.contact`` (select it
    with the participant)."""
    contact = getattr(participant, "contact", None)
    return (
        (getattr(contact, "language", "") or settings.LANGUAGE_CODE) if contact is not None else settings.LANGUAGE_CODE
    )


def may_load_instrument_texts(by: Actor) -> bool:
    """Packs serve every site, so they are loaded by an administrator (a superuser, or a site's administrator) or by
    the system (a command, the demo seed)."""
    return access.may_configure(by) or bool(access.site_ids_with(by, {Role.ADMIN}))


def _placeholders_allowed() -> bool:
    # The demo's stand-in packs are honoured only where they may be loaded: never in production.
    return bool(settings.DEBUG)


def pack_of_row(row: InstrumentText, instrument: Instrument | None = None) -> TextPack:
    """The parsed pack of a stored row (rows are immutable, so the parse is cached per row)."""
    key = (row.pk, row.instrument_code, row.language, row.version)
    if key not in _parsed:
        pack = parse_text_pack(
            row.content,
            instrument_lookup=lambda code, version: (
                instrument
                if instrument is not None and instrument.version == version
                else instrument_get(code, version)
            ),
            languages=[row.language],
            allow_placeholder=True,
        )
        _parsed[key] = TextPack(**{**pack.__dict__, "pk": row.pk})
    return _parsed[key]


def packs_in_force() -> dict[tuple[str, str], TextPack]:
    """The pack shown for each (instrument code, language) to a questionnaire not yet started: the latest loaded pack
    of the instrument's current version, else the wording of a verbatim or site-supplied definition (English). Two
    queries whatever the number of packs."""
    instruments = {inst.code: inst for inst in instruments_all()}
    out: dict[tuple[str, str], TextPack] = {}
    for inst in instruments.values():
        if has_own_text(inst):
            out[(inst.code, "en")] = pack_from_definition(inst)
    placeholders = _placeholders_allowed()
    for row in InstrumentText.objects.order_by("loaded_at", "id"):
        current = instruments.get(row.instrument_code)
        if current is None or row.instrument_version != current.version or (row.placeholder and not placeholders):
            continue
        out[(row.instrument_code, row.language)] = pack_of_row(row, current)
    return out


def text_available() -> set[tuple[str, str]]:
    """The (instrument code, language) pairs a participant can be shown."""
    return set(packs_in_force())


def validated_text_available() -> set[tuple[str, str]]:
    """As ``text_available``, without the demo's placeholders: what counts for the deployment check."""
    return {key for key, pack in packs_in_force().items() if not pack.placeholder}


def pack_for(administration: Administration, language: str) -> TextPack | None:
    """The wording of ``administration`` for a participant in ``language``: its pinned pack, else the pack in force;
    None when it has none (it is held)."""
    if administration.text_pack_id is not None:
        row = InstrumentText.objects.get(pk=administration.text_pack_id)
        return pack_of_row(row)
    return packs_in_force().get((administration.instrument_code, language))


def is_held(administration: Administration, language: str, available: Collection[tuple[str, str]]) -> bool:
    """Is ``administration`` a self-report questionnaire with no wording in ``language``? ``available`` is
    ``text_available()``, read once for many rows."""
    return (
        administration.respondent == SELF
        and administration.text_pack_id is None
        and (administration.instrument_code, language) not in available
    )


def held_q(available: Iterable[tuple[str, str]]) -> Q:
    """``is_held`` as a filter on administrations (the participant's language joined from their contact)."""
    shown = Q(text_pack__isnull=False)
    for code, language in available:
        shown |= Q(instrument_code=code, participant__contact__language=language)
        if language == settings.LANGUAGE_CODE:
            shown |= Q(instrument_code=code, participant__contact__isnull=True)
    return Q(respondent=SELF) & ~shown


def participant_wording(administration: Administration, language: str) -> TextPack:
    """The wording to show a participant for ``administration`` (the participant pages call this). A held
    administration is never offered (``selectors.link_pending``), so reaching one here is a programming error."""
    pack = pack_for(administration, language)
    if pack is None:
        raise LookupError(f"{administration.instrument_code} has no wording in '{language}': it is held")
    return pack


def text_packs_loaded() -> list[InstrumentText]:
    """Every loaded pack, newest first, with who loaded it (one query): superseded ones stay listed."""
    return list(InstrumentText.objects.select_related("loaded_by").order_by("-loaded_at", "-id"))


@dataclass(frozen=True)
class Coverage:
    """Whether a self-report instrument can be shown in a language, and with which wording."""

    instrument: str
    version: str
    language: str
    pack: TextPack | None

    @property
    def missing(self) -> bool:
        return self.pack is None


def text_coverage() -> list[Coverage]:
    """For each self-report instrument (current version) and each site language, the pack in force or none (then its
    questionnaires are held for participants in that language). Two queries."""
    packs = packs_in_force()
    return [
        Coverage(inst.code, inst.version, language, packs.get((inst.code, language)))
        for inst in instruments_all()
        if inst.respondent == SELF
        for language in site_languages()
    ]
