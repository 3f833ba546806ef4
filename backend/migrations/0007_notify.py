from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('ehall', '0006_hall_agency')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Delivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('event_id', fields.BigIntField()),
                ('kind', fields.CharField(max_length=64)),
                ('channel', fields.CharField(max_length=8)),
                ('recipient_kind', fields.CharField(max_length=8)),
                ('recipient_id', fields.BigIntField()),
                ('template', fields.CharField(max_length=48)),
                ('language', fields.CharField(max_length=2)),
                ('urgent', fields.BooleanField(default=False)),
                ('params', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('status', fields.CharField(default='pending', max_length=10)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('claimed_by', fields.CharField(null=True, max_length=96)),
                ('handed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('provider_message_id', fields.CharField(null=True, max_length=64)),
                ('last_error', fields.CharField(null=True, max_length=300)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notify_delivery', 'app': 'ehall', 'unique_together': (('event_id', 'channel', 'recipient_kind', 'recipient_id'),), 'indexes': [Index(fields=['status', 'next_attempt_at']), Index(fields=['provider_message_id'])], 'pk_attr': 'id', 'table_description': 'One event told to one person through one channel. The unique (event, channel, recipient) key'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InboxNotification',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('citizen_id', fields.BigIntField()),
                ('event_id', fields.BigIntField()),
                ('kind', fields.CharField(max_length=64)),
                ('title', fields.CharField(max_length=120)),
                ('body', fields.CharField(max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notify_inbox', 'app': 'ehall', 'unique_together': (('event_id', 'citizen_id'),), 'indexes': [Index(fields=['citizen_id', 'id'])], 'pk_attr': 'id', 'table_description': 'The in-app copy of every notification a citizen gets, whatever else reached them.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SubscriptionCredit',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('citizen_id', fields.BigIntField()),
                ('template_id', fields.CharField(max_length=64)),
                ('remaining', fields.IntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notify_subscription_credit', 'app': 'ehall', 'unique_together': (('citizen_id', 'template_id'),), 'pk_attr': 'id', 'table_description': 'WeChat one-time subscriptions (一次性订阅): each acceptance of wx.requestSubscribeMessage allows'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Appointment',
            name='reminded_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Citizen',
            name='notify_sms',
            field=fields.BooleanField(default=True),
        ),
        ops.AddField(
            model_name='Citizen',
            name='notify_wechat',
            field=fields.BooleanField(default=True),
        ),
        ops.AddField(
            model_name='StaffUser',
            name='phone_enc',
            field=fields.CharField(null=True, max_length=160),
        ),
    ]
