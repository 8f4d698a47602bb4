"""Stored idempotent API responses encrypted at rest, and tied to the endpoint whose signing secret they show.

The body column stays binary (it holds ``hhenc1:`` and a Fernet token): state only. Existing rows are rewritten
encrypted; those that answered an endpoint create (their JSON has the endpoint's ``id`` and ``secret``) are tied to
that endpoint, so rotating its secret drops them. Reversing writes the plaintext back.
"""

import json
from typing import Any

import django.db.models.deletion
from django.db import migrations, models

import hookhub.crypto


def encrypt_rows(apps: Any, schema_editor: Any) -> None:
    alias = schema_editor.connection.alias
    responses = apps.get_model("hookhub", "IdempotentResponse")._base_manager.db_manager(alias)
    endpoints = apps.get_model("hookhub", "Endpoint")._base_manager.db_manager(alias)
    tied = []
    for response in responses.filter(endpoint__isnull=True).only("pk", "body"):
        try:
            shown = json.loads(bytes(response.body))
        except ValueError:
            continue
        if isinstance(shown, dict) and "secret" in shown and endpoints.filter(pk=str(shown.get("id"))).exists():
            response.endpoint_id = str(shown["id"])
            tied.append(response)
    responses.bulk_update(tied, ["endpoint"], batch_size=500)
    hookhub.crypto.reencrypt([responses.model], using=alias)
    _checked_now(schema_editor)


def _checked_now(schema_editor: Any) -> None:
    """PostgreSQL: run the deferred foreign key checks of the rows just written, so the index this migration adds
    afterwards (deferred SQL) is not refused for "pending trigger events"."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


def decrypt_rows(apps: Any, schema_editor: Any) -> None:
    manager = apps.get_model("hookhub", "IdempotentResponse")._base_manager.db_manager(schema_editor.connection.alias)
    with hookhub.crypto.plaintext_writes():
        manager.bulk_update(list(manager.only("pk", "body")), ["body"], batch_size=500)
    _checked_now(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("hookhub", "0006_encrypt_message_headers"),
    ]

    operations = [
        migrations.AddField(
            model_name="idempotentresponse",
            name="endpoint",
            field=models.ForeignKey(
                blank=True,
                help_text="The endpoint whose secret the body shows: the response is dropped when that secret rotates.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="hookhub.endpoint",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="idempotentresponse",
                    name="body",
                    field=hookhub.crypto.EncryptedBinaryField(),
                ),
            ],
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows, elidable=False),
    ]
