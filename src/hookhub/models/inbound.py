"""Receive-side data: Sources (who may call us) and InboundMessages (what they sent). Data only, no I/O."""

from __future__ import annotations

import secrets
from collections.abc import Collection

from django.db import models
from django.db.models import Q

from hookhub.crypto import EncryptedJSONField


def new_slug() -> str:
    """An unguessable URL slug: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


class Source(models.Model):
    name = models.SlugField(max_length=100, unique=True, help_text="Used in handlers: @receiver('<name>', ...).")
    slug = models.CharField(max_length=100, unique=True, default=new_slug, help_text="The secret part of the URL.")
    verifier = models.CharField(max_length=200, help_text="A built-in verifier name or a dotted path.")
    # Encrypted, like the confirmer's: some verifiers take a credential as an option (meta's verify_token).
    options = EncryptedJSONField(default=dict, blank=True)
    secrets = EncryptedJSONField(
        default=list,
        blank=True,
        help_text="Every listed secret is accepted, so keys rotate without downtime.",
    )
    max_body_size = models.PositiveIntegerField(null=True, blank=True, help_text="Bytes; empty: the default.")
    rate_limit = models.CharField(max_length=32, blank=True, help_text="e.g. '100/s', '6000/m'; empty: none.")
    allowed_ips = models.JSONField(default=list, blank=True, help_text="CIDRs; empty: any address.")
    retention_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the default.")
    confirmer = models.CharField(max_length=200, blank=True, help_text="Ask the provider before handling.")
    confirmer_options = EncryptedJSONField(default=dict, blank=True, help_text="May hold an API key: encrypted.")
    forward_to = models.ForeignKey(
        "hookhub.Application",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="forwarded_sources",
        help_text="Forward every verified message to this application's endpoints (the gateway's handlers).",
    )
    forward_event_types = models.JSONField(
        default=list, blank=True, help_text="Only these event types (wildcards allowed); empty: all."
    )
    reply = models.CharField(
        max_length=2000,
        blank=True,
        help_text="The answer to a verified request: blank: the verifier's; 'empty', 'json:{...}' or a dotted path.",
    )
    enabled = models.BooleanField(default=True)
    managed = models.BooleanField(default=False, editable=False, help_text="Declared in settings.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        # The name and slug rule (characters and length) is source_rules.check_name's, with its message.
        super().clean_fields(exclude={*(exclude or ()), "name", "slug"})

    def clean(self) -> None:
        """The rules of ``hookhub.inbound.source_rules`` (a source declared in settings is judged by the system
        checks: its secrets live there). Imported here: models sit below inbound/."""
        from hookhub.inbound.source_rules import SourceRefused, as_validation_error, check_source

        if self.managed:
            return
        try:
            check_source(self)
        except SourceRefused as exc:
            raise as_validation_error(exc) from None


class InboundMessage(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        RETRYING = "retrying", "Retrying"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        INVALID = "invalid", "Invalid body"
        UNCONFIRMED = "unconfirmed", "Not confirmed by the provider"
        SPLIT = "split", "Split into events"
        STALE = "stale", "Stale (older than the last processed for its key)"

    # No index of its own: (source, received_at) below starts with it, and every index costs each INSERT and DELETE.
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="messages", db_index=False)
    # An event of a batch request (SendGrid's array, Meta's entries): the request it came in, stored once. No database
    # constraint and no cascade, so purging stays one DELETE per batch (Django would otherwise load the rows to
    # collect their events); an event has its request's source and received_at, so the same purge removes both.
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="events",
        help_text="The batch request this event was split from.",
    )
    received_at = models.DateTimeField(db_index=True)
    body = models.BinaryField()
    headers = models.JSONField(default=dict)
    payload = models.JSONField(null=True, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    event_type = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL: no id, never unique
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=64, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    confirmed_payload = models.JSONField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=Q(external_id__isnull=False),
                name="hookhub_inbound_unique_external_id",
            ),
        ]
        indexes = [
            # The worker's claim query touches only due work, whatever the size of the table.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "retrying"]),
                name="hookhub_inbound_due",
            ),
            models.Index(fields=["locked_until"], condition=Q(status="processing"), name="hookhub_inbound_leased"),
            models.Index(fields=["source", "received_at"], name="hookhub_inbound_source_time"),
            # A request's events; partial, so the many messages that are not an event cost it nothing.
            models.Index(fields=["parent"], condition=Q(parent__isnull=False), name="hookhub_inbound_parent"),
        ]

    def __str__(self) -> str:
        source = self.source.name  # the admin reads messages with their source (select_related)
        return f"{self.event_type or 'message'} from {source} · #{self.pk}"


class InboundOrderMark(models.Model):
    """Ordered processing: the latest event processed for one key of one ordered handler
    (``@receiver(..., key=..., order_by=...)``); an event ordered before it is stale."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="order_marks")
    handler = models.CharField(max_length=300, help_text="The ordered handler's dotted name.")
    key = models.CharField(max_length=255)
    last_order = models.JSONField(help_text="The order_by value of the latest event processed for this key.")
    last_message = models.BigIntegerField(null=True, blank=True, help_text="That event's inbound message id.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "handler", "key"], name="hookhub_inbound_order_mark_unique"),
        ]
        # Retention deletes a source's marks not moved since its cutoff: without it, a scan of all of them.
        indexes = [models.Index(fields=["source", "updated_at"], name="hookhub_order_mark_age")]

    def __str__(self) -> str:
        return f"{self.handler} · {self.key}"
