"""Safety alerts name their source (a questionnaire response, a vital sign, an adverse event) and the source row's id,
so that alerts the safety app raises join the same list, acknowledgement and escalation. Existing alerts are
questionnaire alerts: their source id is their response's."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("assessments", "0004_administration_open_self_idx_visit")]

    operations = [
        migrations.AddField(
            model_name="safetyalert",
            name="source",
            field=models.CharField(
                choices=[
                    ("questionnaire", "Questionnaire"),
                    ("vital_sign", "Vital Sign"),
                    ("adverse_event", "Adverse Event"),
                ],
                default="questionnaire",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="safetyalert", name="source_id", field=models.PositiveBigIntegerField(null=True)
        ),
        migrations.RunSQL(
            "UPDATE assessments_safetyalert SET source_id = response_id", reverse_sql=migrations.RunSQL.noop
        ),
        migrations.AlterField(
            model_name="safetyalert", name="source_id", field=models.PositiveBigIntegerField()
        ),
        migrations.AlterField(
            model_name="safetyalert",
            name="response",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=models.deletion.PROTECT,
                related_name="safety_alerts",
                to="assessments.response",
            ),
        ),
        migrations.RemoveConstraint(model_name="safetyalert", name="alert_unique_rule_per_response"),
        migrations.AddConstraint(
            model_name="safetyalert",
            constraint=models.UniqueConstraint(
                fields=("source", "source_id", "rule_code"), name="alert_unique_rule_per_source"
            ),
        ),
        migrations.AddConstraint(
            model_name="safetyalert",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("response__isnull", False), ("source", "questionnaire"), ("source_id", models.F("response_id"))),
                    models.Q(models.Q(("source", "questionnaire"), _negated=True), ("response__isnull", True)),
                    _connector="OR",
                ),
                name="alert_response_iff_questionnaire",
            ),
        ),
    ]
