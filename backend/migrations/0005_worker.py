from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('ehall', '0004_queueing')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JobLease',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('holder', fields.CharField(max_length=96)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_run_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_ok_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('runs', fields.BigIntField(default=0)),
                ('last_error', fields.CharField(null=True, max_length=300)),
            ],
            options={'table': 'job_lease', 'app': 'ehall', 'pk_attr': 'name', 'table_description': 'Who may run a periodic job now, and how its last run went (kit.jobs). One row per job: a runner'},
            bases=['Model'],
        ),
    ]
