"""Metric rows: sharded counters and per-minute completions, written in the transaction of what they count."""

from django.db import models


class Counter(models.Model):
    """One shard of a named metric; the metric is the sum of its shards, or their maximum for names ending in .max_us.

    Sharding by order keeps concurrent transactions on PostgreSQL from queueing on one hot row.
    """

    # The upsert finds its row by the primary key: on MySQL, a row found by any other unique key has the gap before
    # it locked too, and two transactions adding counters deadlock.
    pk = models.CompositePrimaryKey("name", "shard")
    name = models.CharField(max_length=64)
    shard = models.PositiveSmallIntegerField()
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}[{self.shard}] = {self.value}"


class CompletedMinute(models.Model):
    """Orders completed in one minute (one shard of it); rows older than RETENTION are pruned."""

    pk = models.CompositePrimaryKey("minute", "shard")  # as Counter's, for the upsert
    minute = models.DateTimeField()
    shard = models.PositiveSmallIntegerField()
    count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.minute:%H:%M}[{self.shard}] = {self.count}"
