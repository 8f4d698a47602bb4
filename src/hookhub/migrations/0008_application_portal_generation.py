"""Applications get a portal generation: part of every portal link and session, raised to revoke them all."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hookhub", "0007_encrypt_idempotent_responses"),
    ]

    operations = [
        migrations.AddField(
            model_name="application",
            name="portal_generation",
            field=models.PositiveIntegerField(
                default=0, help_text="Part of every portal link and session; raising it revokes them all."
            ),
        ),
    ]
