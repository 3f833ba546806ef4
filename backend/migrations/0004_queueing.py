from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('ehall', '0003_appointments')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Ticket',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('hall_code', fields.CharField(max_length=12)),
                ('prefix', fields.CharField(max_length=1)),
                ('business_date', fields.DateField()),
                ('seq', fields.IntField()),
                ('number', fields.CharField(max_length=8)),
                ('category', fields.CharField(max_length=1)),
                ('source', fields.CharField(max_length=12)),
                ('priority', fields.CharField(max_length=16)),
                ('rank', fields.SmallIntField()),
                ('status', fields.CharField(default='waiting', max_length=10)),
                ('citizen_id', fields.BigIntField(null=True)),
                ('appointment_id', fields.BigIntField(null=True, unique=True)),
                ('waiting_holder', fields.BigIntField(null=True)),
                ('arrived_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('window_number', fields.CharField(null=True, max_length=8)),
                ('window_department', fields.CharField(null=True, max_length=32)),
                ('directed_window', fields.CharField(null=True, max_length=8)),
                ('called_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('recalls', fields.SmallIntField(default=0)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('missed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('requeued', fields.BooleanField(default=False)),
                ('turn_near_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_from', fields.CharField(null=True, max_length=10)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'ticket', 'app': 'ehall', 'unique_together': (('hall_code', 'prefix', 'business_date', 'seq'), ('hall_code', 'category', 'waiting_holder')), 'indexes': [Index(fields=['hall_code', 'status', 'category', 'rank', 'arrived_at']), Index(fields=['citizen_id', 'created_at']), Index(fields=['business_date', 'status'])], 'pk_attr': 'id', 'table_description': 'A queue ticket (号), numbered prefix + seq for its hall and business day.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TicketCounter',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('hall_code', fields.CharField(max_length=12)),
                ('prefix', fields.CharField(max_length=1)),
                ('business_date', fields.DateField()),
                ('last_seq', fields.IntField(default=0)),
            ],
            options={'table': 'ticket_counter', 'app': 'ehall', 'unique_together': (('hall_code', 'prefix', 'business_date'),), 'pk_attr': 'id', 'table_description': 'The last ticket number given in a hall for a prefix on a business date.'},
            bases=['Model'],
        ),
    ]
