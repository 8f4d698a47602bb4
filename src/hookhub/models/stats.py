"""Pre-aggregated counts for the admin dashboard (``hookhub.stats`` writes and reads them)."""

from __future__ import annotations

from django.db import models


class StatBucket(models.Model):
    """How many messages or deliveries of one subject ended one way in one hour.

    ``side`` is ``in`` (``subject`` a source's id) or ``out`` (``subject`` an endpoint's id, with its application's).
    ``outcome`` is a status (received, processed, failed; succeeded, retrying, failed) or ``ms<i>``: the attempts whose
    latency fell in bucket ``i`` of ``hookhub.stats.LATENCY_BOUNDS_MS``, a histogram from which p95 is read.

    ``shard``: on PostgreSQL each process adds to its own rows (its pid modulo ``hookhub.stats.SHARDS``), so that two
    web processes' group commits do not queue on one row's lock until the other's commit is flushed; readers sum over
    shards. SQLite writes one transaction at a time anyway and keeps shard 0.
    """

    hour = models.DateTimeField()
    side = models.CharField(max_length=3)
    subject = models.CharField(max_length=40)
    application_id = models.BigIntegerField(default=0)
    outcome = models.CharField(max_length=16)
    count = models.BigIntegerField(default=0)
    shard = models.SmallIntegerField(default=0)

    class Meta:
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "side", "subject", "outcome", "shard"], name="hookhub_statbucket_shard_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.side} {self.subject} {self.outcome}: {self.count}"
