from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0005_alerts_webhooks')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SatelliteMetricRollup',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('satellite', fields.ForeignKeyField('models.Satellite', source_field='satellite_id', db_constraint=True, to_field='id', related_name='metric_rollups', on_delete=OnDelete.CASCADE)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='metric_rollups', on_delete=OnDelete.SET_NULL)),
                ('resolution', fields.CharField(max_length=8)),
                ('bucket', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('samples', fields.IntField()),
                ('cpu_min', fields.FloatField()),
                ('cpu_sum', fields.FloatField()),
                ('cpu_max', fields.FloatField()),
                ('memory_min', fields.FloatField()),
                ('memory_sum', fields.FloatField()),
                ('memory_max', fields.FloatField()),
                ('disk_samples', fields.IntField(default=0)),
                ('disk_min', fields.FloatField(null=True)),
                ('disk_sum', fields.FloatField(null=True)),
                ('disk_max', fields.FloatField(null=True)),
                ('process_min', fields.IntField()),
                ('process_max', fields.IntField()),
                ('error_max', fields.IntField()),
            ],
            options={'table': 'satellite_metric_rollups', 'app': 'models', 'unique_together': (('satellite', 'resolution', 'bucket'),), 'indexes': [Index(fields=['team_id', 'resolution', 'bucket']), Index(fields=['resolution', 'bucket'])], 'pk_attr': 'id', 'table_description': 'One bucket: counts, sums (for averages), minima and maxima of the heartbeats whose'},
            bases=['Model'],
        ),
    ]
