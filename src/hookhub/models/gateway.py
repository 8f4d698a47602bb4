"""Gateway data: API tokens, idempotent API responses, worker heartbeats. Data only, no I/O."""

from __future__ import annotations

from django.db import models

from hookhub.crypto import EncryptedBinaryField

from .outbound import Application, Endpoint


class ApiToken(models.Model):
    """A bearer token for the REST API. Only a hash is stored; the token is shown once, when it is made.

    A token with an application can see and change that application's data only; one without is global.
    """

    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, unique=True, help_text="The token's first characters, to find it.")
    digest = models.CharField(max_length=128, help_text="SHA-256 of the whole token.")
    application = models.ForeignKey(
        Application, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        scope = self.application.uid if self.application_id and self.application else "global"
        return f"{self.prefix}… ({scope})"


class IdempotentResponse(models.Model):
    """The first response to an API create sent with an ``Idempotency-Key``, replayed for repeats of that key.

    The body is encrypted: an endpoint's is the only copy of its signing secret outside the endpoint row. It is
    dropped with that endpoint, and when the endpoint's secret is rotated.
    """

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_digest = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    body = EncryptedBinaryField()
    endpoint = models.ForeignKey(
        Endpoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The endpoint whose secret the body shows: the response is dropped when that secret rotates.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="hookhub_idempotency_once")]

    def __str__(self) -> str:
        return self.key


class WorkerHeartbeat(models.Model):
    worker_id = models.CharField(max_length=100, unique=True)
    seen_at = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField()
    stats = models.JSONField(default=dict, help_text="The worker's counters since it started (see hookhub.metrics).")

    def __str__(self) -> str:
        return self.worker_id
