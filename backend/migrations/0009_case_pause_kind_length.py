from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('ehall', '0008_cases')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='Case',
            name='pause_kind',
            field=fields.CharField(null=True, max_length=24),
        ),
    ]
