"""Heartbeat metrics rolled up per minute and per hour, per satellite (docs/operations.md
§12): what charts and capacity planning read, kept longer than raw heartbeats."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from app.models.people import Team
from app.models.satellites import Satellite


class SatelliteMetricRollup(Model):
    """One bucket: counts, sums (for averages), minima and maxima of the heartbeats whose
    time falls in it. Written by the heartbeat flusher, added to when a bucket spans
    several flushes."""

    id = fields.BigIntField(primary_key=True)
    satellite: fields.ForeignKeyRelation[Satellite] = fields.ForeignKeyField(
        "models.Satellite", related_name="metric_rollups", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="metric_rollups", null=True, on_delete=fields.SET_NULL
    )
    resolution = fields.CharField(max_length=8)  # minute, hour
    bucket = fields.DatetimeField()
    samples = fields.IntField()
    cpu_min = fields.FloatField()
    cpu_sum = fields.FloatField()
    cpu_max = fields.FloatField()
    memory_min = fields.FloatField()
    memory_sum = fields.FloatField()
    memory_max = fields.FloatField()
    disk_samples = fields.IntField(default=0)
    disk_min = fields.FloatField(null=True)
    disk_sum = fields.FloatField(null=True)
    disk_max = fields.FloatField(null=True)
    process_min = fields.IntField()
    process_max = fields.IntField()
    error_max = fields.IntField()

    class Meta:
        table = "satellite_metric_rollups"
        unique_together = (("satellite", "resolution", "bucket"),)
        indexes = (Index(fields=("team_id", "resolution", "bucket")),
                   Index(fields=("resolution", "bucket")))
