"""Secrets encrypted at rest: the fields become encrypted ones, then every existing row is rewritten encrypted.

The column types stay (JSON stays JSON: it holds one encrypted JSON string); ``Endpoint.secret`` becomes text, as a
Fernet token of an Ed25519 key is longer than the old 200 characters. Reversing writes the plaintext back.
"""

from typing import Any

from django.db import migrations

import hookhub.crypto
import hookhub.signing

MODELS = ("Source", "Endpoint")


def encrypt_rows(apps: Any, schema_editor: Any) -> None:
    models = [apps.get_model("hookhub", name) for name in MODELS]
    hookhub.crypto.reencrypt(models, using=schema_editor.connection.alias)


def decrypt_rows(apps: Any, schema_editor: Any) -> None:
    models = [apps.get_model("hookhub", name) for name in MODELS]
    with hookhub.crypto.plaintext_writes():
        for model in models:
            fields = hookhub.crypto.encrypted_fields(model)
            manager = model._base_manager.db_manager(schema_editor.connection.alias)
            rows = list(manager.only("pk", *fields))
            manager.bulk_update(rows, fields, batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("hookhub", "0004_inbound_source_index"),
    ]

    operations = [
        # JSON stays JSON (it holds one encrypted JSON string): state only, so SQLite rebuilds no table for them.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="endpoint",
                    name="headers",
                    field=hookhub.crypto.EncryptedJSONField(
                        blank=True, default=dict, help_text="Extra request headers."
                    ),
                ),
                migrations.AlterField(
                    model_name="endpoint",
                    name="previous_secrets",
                    field=hookhub.crypto.EncryptedJSONField(
                        blank=True,
                        default=list,
                        help_text="[{secret, expires_at}]: still signing during a rotation's overlap.",
                    ),
                ),
                migrations.AlterField(
                    model_name="source",
                    name="confirmer_options",
                    field=hookhub.crypto.EncryptedJSONField(
                        blank=True, default=dict, help_text="May hold an API key: encrypted."
                    ),
                ),
                migrations.AlterField(
                    model_name="source",
                    name="options",
                    field=hookhub.crypto.EncryptedJSONField(blank=True, default=dict),
                ),
                migrations.AlterField(
                    model_name="source",
                    name="secrets",
                    field=hookhub.crypto.EncryptedJSONField(
                        blank=True,
                        default=list,
                        help_text="Every listed secret is accepted, so keys rotate without downtime.",
                    ),
                ),
            ],
        ),
        migrations.AlterField(
            model_name="endpoint",
            name="secret",
            field=hookhub.crypto.EncryptedTextField(default=hookhub.signing.generate_secret),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows, elidable=False),
    ]
