"""Rate limits shared by every worker: one pace row per rate-limited endpoint (see ``outbound.pacing``)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hookhub", "0008_application_portal_generation"),
    ]

    operations = [
        migrations.CreateModel(
            name="EndpointPace",
            fields=[
                (
                    "endpoint",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="pace",
                        serialize=False,
                        to="hookhub.endpoint",
                    ),
                ),
                ("next_at", models.FloatField()),
                ("rate", models.FloatField()),
            ],
        ),
    ]
