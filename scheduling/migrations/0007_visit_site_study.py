"""Each visit carries its participant's site and study (copied at creation; a participant changes neither), so the
home page's worklists filter and count visits from the visit table and its indexes alone."""

import django.db.models.deletion
from django.db import migrations, models


def copy_from_participant(apps, schema_editor):
    Visit = apps.get_model("scheduling", "Visit")
    Participant = apps.get_model("participants", "Participant")
    Visit.objects.update(
        site_id=models.Subquery(Participant.objects.filter(pk=models.OuterRef("participant_id")).values("site_id")),
        study_id=models.Subquery(Participant.objects.filter(pk=models.OuterRef("participant_id")).values("study_id")),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0004_staff_profile"),
        ("scheduling", "0006_store_protocols_mapp_v2_samati_v2"),
    ]

    operations = [
        migrations.AddField(
            model_name="visit",
            name="site",
            field=models.ForeignKey(
                db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+",
                to="participants.site",
            ),
        ),
        migrations.AddField(
            model_name="visit",
            name="study",
            field=models.ForeignKey(
                db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+",
                to="participants.study",
            ),
        ),
        migrations.RunPython(copy_from_participant, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="visit",
            name="site",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="participants.site"
            ),
        ),
        migrations.AlterField(
            model_name="visit",
            name="study",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="participants.study"
            ),
        ),
        migrations.AddIndex(
            model_name="visit",
            index=models.Index(
                condition=models.Q(("status__in", ["planned", "scheduled"])),
                fields=["site", "window_end"],
                include=["code", "study"],
                name="visit_open_site_window_end_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="visit",
            index=models.Index(
                condition=models.Q(("scheduled_start__isnull", False)),
                fields=["site", "scheduled_start"],
                include=["status", "kind", "code", "study"],
                name="visit_site_start_idx",
            ),
        ),
    ]
