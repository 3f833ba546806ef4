from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('ehall', '0002_accounts_sessions_catalog_links')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AppointmentSlot',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('hall', fields.ForeignKeyField('ehall.Hall', source_field='hall_id', db_constraint=True, to_field='code', related_name='appointment_slots', on_delete=OnDelete.RESTRICT)),
                ('category', fields.CharField(max_length=1)),
                ('day', fields.DateField()),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('capacity', fields.IntField()),
                ('booked', fields.IntField(default=0)),
            ],
            options={'table': 'appointment_slot', 'app': 'ehall', 'unique_together': (('hall', 'category', 'starts_at'),), 'indexes': [Index(fields=['hall_id', 'category', 'day'])], 'pk_attr': 'id', 'table_description': "A bookable period (预约时段) of one hall's queue category on one working day. `booked` only"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Appointment',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('citizen_id', fields.BigIntField()),
                ('slot', fields.ForeignKeyField('ehall.AppointmentSlot', source_field='slot_id', db_constraint=True, to_field='id', related_name='appointments', on_delete=OnDelete.RESTRICT)),
                ('hall_code', fields.CharField(max_length=12)),
                ('category', fields.CharField(max_length=1)),
                ('item_code', fields.CharField(max_length=48)),
                ('day', fields.DateField()),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharField(default='booked', max_length=12)),
                ('active_key', fields.SmallIntField(null=True, default=1)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('checked_in_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'appointment', 'app': 'ehall', 'unique_together': (('citizen_id', 'item_code', 'day', 'active_key'),), 'indexes': [Index(fields=['citizen_id', 'starts_at']), Index(fields=['status', 'ends_at'])], 'pk_attr': 'id', 'table_description': "A citizen's booking (预约) of a slot for one service item. The slot's day and times are copied"},
            bases=['Model'],
        ),
    ]
