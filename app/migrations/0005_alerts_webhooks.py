from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from app.models.enums import AlertSeverity, AlertState, DeliveryState
from app.models.ids import new_id
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_satellite_status_index')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Alert',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('rule', fields.CharField(max_length=48)),
                ('subject', fields.CharField(max_length=255)),
                ('open_key', fields.CharField(null=True, unique=True, max_length=320)),
                ('satellite', fields.ForeignKeyField('models.Satellite', source_field='satellite_id', null=True, db_constraint=True, to_field='id', related_name='alerts', on_delete=OnDelete.CASCADE)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='alerts', on_delete=OnDelete.CASCADE)),
                ('installation_id', fields.CharField(null=True, max_length=32)),
                ('severity', fields.CharEnumField(description='WARNING: warning\nCRITICAL: critical', enum_type=AlertSeverity, max_length=16)),
                ('state', fields.CharEnumField(default=AlertState.OPEN, description='OPEN: open\nACKNOWLEDGED: acknowledged\nRESOLVED: resolved', enum_type=AlertState, max_length=16)),
                ('summary', fields.CharField(max_length=500)),
                ('details', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('occurrences', fields.IntField(default=1)),
                ('opened_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('acknowledged_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('acknowledged_by', fields.ForeignKeyField('models.User', source_field='acknowledged_by_id', null=True, db_constraint=True, to_field='id', related_name='acknowledged_alerts', on_delete=OnDelete.SET_NULL)),
                ('silenced_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'alerts', 'app': 'models', 'indexes': [Index(fields=['team_id', 'state', 'opened_at']), Index(fields=['state', 'opened_at'])], 'pk_attr': 'id', 'table_description': 'Alerts raised by the rules of docs/alerts.md, one open per subject.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AlertRuleSetting',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rule', fields.CharField(max_length=48)),
                ('scope', fields.CharField(max_length=32)),
                ('enabled', fields.BooleanField(default=True)),
                ('params', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'alert_rule_settings', 'app': 'models', 'unique_together': (('rule', 'scope'),), 'pk_attr': 'id', 'table_description': "A rule's settings: `scope` is `global` (the defaults) or a team id (its override)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Webhook',
            fields=[
                ('id', fields.CharField(primary_key=True, default=new_id, unique=True, db_index=True, max_length=32)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='webhooks', on_delete=OnDelete.CASCADE)),
                ('url', fields.CharField(max_length=2048)),
                ('description', fields.CharField(default='', max_length=255)),
                ('secret_sealed', fields.TextField(unique=False)),
                ('enabled', fields.BooleanField(default=True)),
                ('consecutive_failures', fields.IntField(default=0)),
                ('disabled_reason', fields.CharField(null=True, max_length=255)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'webhooks', 'app': 'models', 'pk_attr': 'id', 'table_description': "Where alerts are sent: a team's (its alerts) or global (every alert)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('webhook', fields.ForeignKeyField('models.Webhook', source_field='webhook_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('alert', fields.ForeignKeyField('models.Alert', source_field='alert_id', null=True, db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.SET_NULL)),
                ('event', fields.CharField(max_length=48)),
                ('body', fields.TextField(unique=False)),
                ('state', fields.CharEnumField(default=DeliveryState.PENDING, description='PENDING: pending\nDELIVERED: delivered\nFAILED: failed', enum_type=DeliveryState, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_status', fields.IntField(null=True)),
                ('last_error', fields.CharField(null=True, max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_deliveries', 'app': 'models', 'indexes': [Index(fields=['state', 'next_attempt_at']), Index(fields=['webhook_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'One message to one webhook, kept until delivered or given up (durable retries).'},
            bases=['Model'],
        ),
    ]
