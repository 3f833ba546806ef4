from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('ehall', '0010_cases_queue_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Conversation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('citizen_id', fields.BigIntField(null=True)),
                ('channel', fields.CharField(max_length=8)),
                ('oa_openid', fields.CharField(null=True, max_length=64)),
                ('hall_code', fields.CharField(max_length=12)),
                ('hall_path', fields.CharField(max_length=120)),
                ('department_code', fields.CharField(default='', max_length=32)),
                ('item_code', fields.CharField(null=True, max_length=48)),
                ('status', fields.CharField(default='open', max_length=10)),
                ('assignee_id', fields.BigIntField(null=True)),
                ('opening_client_msg_id', fields.CharField(null=True, max_length=64)),
                ('flagged', fields.BooleanField(default=False)),
                ('business_date', fields.DateField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_message_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_citizen_message_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('first_answered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('citizen_read_up_to', fields.BigIntField(default=0)),
                ('staff_read_up_to', fields.BigIntField(default=0)),
            ],
            options={'table': 'conversation', 'app': 'ehall', 'unique_together': (('citizen_id', 'opening_client_msg_id'),), 'indexes': [Index(fields=['hall_code', 'department_code', 'status']), Index(fields=['assignee_id', 'status']), Index(fields=['citizen_id', 'last_message_at']), Index(fields=['oa_openid', 'status']), Index(fields=['business_date', 'department_code'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConversationMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('conversation', fields.ForeignKeyField('ehall.Conversation', source_field='conversation_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.CASCADE)),
                ('sender_kind', fields.CharField(max_length=8)),
                ('sender_id', fields.BigIntField()),
                ('client_msg_id', fields.CharField(max_length=64)),
                ('text', fields.TextField(default='', unique=False)),
                ('review', fields.BooleanField(default=False)),
                ('image_key', fields.CharField(null=True, max_length=32)),
                ('image_type', fields.CharField(null=True, max_length=16)),
                ('image_size', fields.IntField(null=True)),
                ('image_sha256', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'conversation_message', 'app': 'ehall', 'unique_together': (('conversation', 'sender_kind', 'sender_id', 'client_msg_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OfficialAccountInbound',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=96)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'official_account_inbound', 'app': 'ehall', 'pk_attr': 'key', 'table_description': 'A callback message taken from WeChat, by its MsgId (an event by its sender and time): WeChat'},
            bases=['Model'],
        ),
    ]
