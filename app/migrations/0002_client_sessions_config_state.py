from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='McpClientSession',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('satellite', fields.ForeignKeyField('models.Satellite', source_field='satellite_id', db_constraint=True, to_field='id', related_name='client_sessions', on_delete=OnDelete.CASCADE)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='client_sessions', on_delete=OnDelete.CASCADE)),
                ('session_id', fields.CharField(max_length=255)),
                ('client_type', fields.CharField(null=True, max_length=64)),
                ('client_name', fields.CharField(null=True, max_length=255)),
                ('transport', fields.CharField(null=True, max_length=32)),
                ('user_agent', fields.CharField(null=True, max_length=512)),
                ('ip_address', fields.CharField(null=True, max_length=64)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='client_sessions', on_delete=OnDelete.SET_NULL)),
                ('connected_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('disconnected_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('duration_seconds', fields.FloatField(null=True)),
                ('tool_execution_count', fields.IntField(null=True)),
                ('disconnect_reason', fields.CharField(null=True, max_length=64)),
                ('last_activity_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'mcp_client_sessions', 'app': 'models', 'unique_together': (('satellite', 'session_id'),), 'indexes': [Index(fields=['team_id', 'connected_at'])], 'pk_attr': 'id', 'table_description': "One MCP client's connection to a satellite for a team: who, from what, where, how long."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ResourceLimitBreach',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('satellite', fields.ForeignKeyField('models.Satellite', source_field='satellite_id', db_constraint=True, to_field='id', related_name='limit_breaches', on_delete=OnDelete.CASCADE)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='limit_breaches', on_delete=OnDelete.CASCADE)),
                ('resource_type', fields.CharField(max_length=32)),
                ('current_value', fields.FloatField(null=True)),
                ('limit_value', fields.FloatField(null=True)),
                ('occurred_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'resource_limit_breaches', 'app': 'models', 'indexes': [Index(fields=['team_id', 'occurred_at'])], 'pk_attr': 'id', 'table_description': 'A team resource limit a satellite reported as exceeded (input to alerts).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SatelliteConfigState',
            fields=[
                ('satellite', fields.OneToOneField('models.Satellite', source_field='satellite_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='config_state', on_delete=OnDelete.CASCADE)),
                ('refreshed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('config_hash', fields.CharField(null=True, max_length=255)),
                ('server_count', fields.IntField(null=True)),
                ('teams_count', fields.IntField(null=True)),
                ('change_detected', fields.BooleanField(null=True)),
                ('fetch_duration_ms', fields.FloatField(null=True)),
                ('error_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('error_type', fields.CharField(null=True, max_length=64)),
                ('error_message', fields.TextField(null=True, unique=False)),
                ('error_status_code', fields.IntField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'satellite_config_states', 'app': 'models', 'pk_attr': 'satellite_id', 'table_description': 'The configuration a satellite last applied, and its last error fetching one.'},
            bases=['Model'],
        ),
    ]
