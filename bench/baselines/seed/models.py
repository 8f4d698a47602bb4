from __future__ import annotations

from typing import ClassVar

from django.db import models


class AcmeWebhookMessage(models.Model):
    received_at = models.DateTimeField(help_text="When we received the event.")
    payload = models.JSONField(default=None, null=True)

    objects: ClassVar[models.Manager[AcmeWebhookMessage]] = models.Manager()

    class Meta:
        indexes = [models.Index(fields=["received_at"])]

    def __str__(self) -> str:
        return f"{self.received_at}"
