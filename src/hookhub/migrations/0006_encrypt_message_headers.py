"""Message headers encrypted at rest (an application may pass a credential with ``send(headers=...)``).

The column stays JSON (it holds one encrypted JSON string, as 0005's columns do): state only, so SQLite rebuilds no
table. Every existing row with headers is rewritten encrypted; empty ones (most messages) stay ``{}``, which holds
nothing. Reversing writes the plaintext back.
"""

from typing import Any

from django.db import migrations

import hookhub.crypto


def encrypt_rows(apps: Any, schema_editor: Any) -> None:
    hookhub.crypto.reencrypt([apps.get_model("hookhub", "Message")], using=schema_editor.connection.alias)


def decrypt_rows(apps: Any, schema_editor: Any) -> None:
    manager = apps.get_model("hookhub", "Message")._base_manager.db_manager(schema_editor.connection.alias)
    with hookhub.crypto.plaintext_writes():
        manager.bulk_update(list(manager.only("pk", "headers")), ["headers"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("hookhub", "0005_encrypt_secrets"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="headers",
                    field=hookhub.crypto.EncryptedJSONField(
                        blank=True,
                        default=dict,
                        empty_in_clear=True,
                        help_text="Extra headers sent with every delivery.",
                    ),
                ),
            ],
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows, elidable=False),
    ]
