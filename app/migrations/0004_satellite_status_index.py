from tortoise import migrations
from tortoise.migrations import operations as ops

# An index on `satellites.status`: the fleet list counts every satellite that is not
# deleted, and with an index SQLite counts from it instead of scanning the wide rows.
# Plain SQL on purpose: tortoise's AlterField(db_index=True) rebuilds the SQLite table
# and loses its other indexes (seen with tortoise-orm 1.1.9).
INDEX = 'CREATE INDEX IF NOT EXISTS "idx_satellites_status" ON "satellites" ("status")'


class Migration(migrations.Migration):
    dependencies = [('models', '0003_rotated_key_unused')]

    initial = False

    operations = [
        ops.RunSQL(INDEX, reverse_sql='DROP INDEX IF EXISTS "idx_satellites_status"'),
    ]
