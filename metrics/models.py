"""Metric rows: sharded counters and per-minute completions, written in the transaction of what they count."""

from django.db import models

# Histogram bucket upper bounds in seconds; the last bucket (+Inf) is implicit. Changing them needs metrics_rebuild.
PROCESSING_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10, 30, 60)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 1800, 3600)
HISTOGRAMS = {"processing": PROCESSING_BUCKETS, "queue_wait": WAIT_BUCKETS, "end_to_end": WAIT_BUCKETS}


class Counter(models.Model):
    """One shard of a named metric; the metric is the sum of its shards, or their maximum for names ending in .max_us.

    Sharding by order keeps concurrent transactions on PostgreSQL from queueing on one hot row.
    """

    name = models.CharField(max_length=64)
    shard = models.PositiveSmallIntegerField()
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "shard"], name="metrics_counter_name_shard")]

    def __str__(self) -> str:
        return f"{self.name}[{self.shard}] = {self.value}"


class CompletedMinute(models.Model):
    """Orders completed in one minute (one shard of it); rows older than RETENTION are pruned."""

    minute = models.DateTimeField()
    shard = models.PositiveSmallIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["minute", "shard"], name="metrics_minute_shard")]

    def __str__(self) -> str:
        return f"{self.minute:%H:%M}[{self.shard}] = {self.count}"
