from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('ehall', '0009_case_pause_kind_length')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['department_code', 'status', 'hall_code', 'id']),
        ),
        ops.RemoveIndex(
            model_name='CaseStep',
            name=None,
            fields=['department_code', 'status', 'case_id'],
        ),
        ops.AddIndex(
            model_name='CaseStep',
            index=Index(fields=['department_code', 'status', 'hall_code', 'case_id']),
        ),
    ]
