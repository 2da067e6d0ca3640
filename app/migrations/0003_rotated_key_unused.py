from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_client_sessions_config_state')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Satellite',
            name='rotated_key_unused',
            field=fields.BooleanField(default=False),
        ),
    ]
