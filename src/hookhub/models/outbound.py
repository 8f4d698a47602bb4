"""Send-side data: Applications (your customers), EventTypes, Endpoints, Messages, Deliveries, Attempts.

Data only, no I/O. Publishing lives in ``hookhub.outbound.publish``, delivering in ``hookhub.outbound.dispatch``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from hookhub.crypto import EncryptedJSONField, EncryptedTextField
from hookhub.exceptions import Refused
from hookhub.ids import endpoint_id, message_id
from hookhub.outbound import rules
from hookhub.signing import ED25519_PRIVATE_PREFIX, generate_ed25519_keypair, generate_secret


class Application(models.Model):
    uid = models.CharField(max_length=200, unique=True, help_text="Your identifier for this customer.")
    name = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    portal_generation = models.PositiveIntegerField(
        default=0, help_text="Part of every portal link and session; raising it revokes them all."
    )
    contact_email = models.EmailField(
        blank=True, help_text="Who hears (by email) when one of this customer's endpoints is disabled or failing."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["uid"]

    def __str__(self) -> str:
        return self.uid

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        """Django's checks of each field, then the rules of ``hookhub.outbound.rules`` for the uid and the contact
        email (their refusal says more than Django's, so it wins)."""
        errors = _field_errors(super().clean_fields, exclude)
        for name, rule in (("uid", rules.check_application_uid), ("contact_email", rules.check_contact_email)):
            if name not in (exclude or ()):
                try:
                    setattr(self, name, rule(getattr(self, name)))
                except Refused as exc:
                    errors[name] = [exc.as_validation_error()]
        if errors:
            raise ValidationError(errors)


def _field_errors(clean_fields: Any, exclude: Collection[str] | None) -> dict[str, Any]:
    try:
        clean_fields(exclude)
    except ValidationError as exc:
        return dict(exc.error_dict)
    return {}


class EventType(models.Model):
    name = models.CharField(max_length=200, unique=True, help_text="e.g. invoice.paid")
    description = models.TextField(blank=True)
    schema = models.JSONField(null=True, blank=True, help_text="A JSON Schema that payloads must satisfy.")
    example = models.JSONField(null=True, blank=True)
    deprecated = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1, help_text="Raised on a breaking change to the schema.")
    from_code = models.BooleanField(
        default=False, help_text="Declared in code or settings (hookhub.event_type); migrate keeps it in step."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Endpoint(models.Model):
    class BodyFormat(models.TextChoices):
        JSON = "json", "JSON"
        FORM = "form", "Form-encoded (payload=<json>)"

    class Scheme(models.TextChoices):
        HMAC = "v1", "v1: HMAC-SHA256 (whsec_)"
        ED25519 = "v1a", "v1a: Ed25519 (whsk_ / whpk_)"

    id = models.CharField(primary_key=True, max_length=40, default=endpoint_id, editable=False)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=500, blank=True)
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event type names (wildcards allowed); empty: every event."
    )
    body_format = models.CharField(max_length=8, choices=BodyFormat.choices, default=BodyFormat.JSON)
    scheme = models.CharField(max_length=4, choices=Scheme.choices, default=Scheme.HMAC)
    secret = EncryptedTextField(default=generate_secret)
    previous_secrets = EncryptedJSONField(
        default=list, blank=True, help_text="[{secret, expires_at}]: still signing during a rotation's overlap."
    )
    # Encrypted: an operator may put a credential here (Authorization), and the portal hides these values too.
    headers = EncryptedJSONField(default=dict, blank=True, help_text="Extra request headers.")
    rate_limit = models.FloatField(null=True, blank=True, help_text="Deliveries per second; empty: no limit.")
    fifo = models.BooleanField(default=False, help_text="One delivery in flight at a time, in message order.")
    channels = models.JSONField(
        default=list, blank=True, help_text="Channel names; empty: messages of every channel (and of none)."
    )
    filter = models.JSONField(
        null=True, blank=True, help_text="Only messages whose payload (and headers.<name>) match this filter."
    )
    retry_schedule = models.JSONField(
        null=True, blank=True, help_text="Seconds before each retry; empty: the global RETRY_SCHEDULE."
    )
    timeout = models.FloatField(null=True, blank=True, help_text="Seconds per attempt; empty: DELIVERY_TIMEOUT.")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True, help_text="Backing off after 429/502/503/504.")
    last_success_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True, help_text="When people were last emailed about it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["application", "enabled"], name="hookhub_endpoint_app"),
            # Whether any endpoint is FIFO, asked by every claim (``outbound.candidates.any_due``), in one probe.
            models.Index(fields=["id"], condition=models.Q(fifo=True), name="hookhub_endpoint_fifo"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.url}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The scheme decides how deliveries are signed, so the secret must be a key of that scheme.
        ed25519 = self.scheme == self.Scheme.ED25519
        if ed25519 != self.secret.startswith(ED25519_PRIVATE_PREFIX):
            self.secret = generate_ed25519_keypair()[0] if ed25519 else generate_secret()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "secret"}
        super().save(*args, **kwargs)

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        """Django's checks of each field, then the rules of ``hookhub.outbound.rules`` (whose refusal of a field
        replaces Django's: it says the same thing as every other front door)."""
        errors = _field_errors(super().clean_fields, exclude)
        errors |= rules.field_errors(self, exclude or ())
        if errors:
            raise ValidationError(errors)


class EndpointPace(models.Model):
    """Where a rate-limited endpoint's pace stands, shared by every worker: the earliest time (Unix seconds) the
    next delivery may go, and the rate that was computed for. Written only by ``outbound.pacing.reserve``."""

    endpoint = models.OneToOneField(Endpoint, on_delete=models.CASCADE, primary_key=True, related_name="pace")
    next_at = models.FloatField()
    rate = models.FloatField()

    def __str__(self) -> str:
        return f"{self.endpoint_id} next at {self.next_at} ({self.rate}/s)"


class Message(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=message_id, editable=False)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="messages")
    event_type = models.CharField(max_length=200)
    payload = models.JSONField(null=True)
    payload_purged = models.BooleanField(default=False)
    # Encrypted (an application may pass a credential): empty, as most messages are, it is stored as it is.
    headers = EncryptedJSONField(
        default=dict, blank=True, empty_in_clear=True, help_text="Extra headers sent with every delivery."
    )
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL: no key
    channels = models.JSONField(
        default=list, blank=True, help_text="At most 10; endpoints with channels get a message only when it shares one."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="hookhub_message_idempotency",
            )
        ]

    def __str__(self) -> str:
        return self.id


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=64, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "endpoint"], name="hookhub_delivery_once_per_endpoint")
        ]
        indexes = [
            # Claims read only due work, whatever the size of the table.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="hookhub_delivery_due"),
            models.Index(fields=["locked_until"], condition=Q(status="sending"), name="hookhub_delivery_leased"),
            models.Index(fields=["endpoint", "status"], name="hookhub_delivery_endpoint"),
            # Endpoint health: an endpoint's latest finished deliveries.
            models.Index(
                fields=["endpoint", "-finished_at"],
                condition=Q(finished_at__isnull=False),
                name="hookhub_delivery_finished",
            ),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.message_id} → {self.endpoint_id}"


class Attempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    created_at = models.DateTimeField()
    url = models.URLField(max_length=2000)
    request_headers = models.JSONField(default=dict)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["delivery", "created_at"], name="hookhub_attempt_delivery")]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.response_status or self.error}"
