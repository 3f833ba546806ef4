from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('ehall', '0007_notify')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Case',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('receipt', fields.CharField(unique=True, max_length=32)),
                ('item_code', fields.CharField(max_length=48)),
                ('department_code', fields.CharField(max_length=32)),
                ('hall_code', fields.CharField(max_length=12)),
                ('citizen_id', fields.BigIntField()),
                ('applicant_kind', fields.CharField(max_length=10)),
                ('applicant_name_enc', fields.CharField(max_length=269)),
                ('applicant_id_number_enc', fields.CharField(max_length=160)),
                ('enterprise_name', fields.CharField(null=True, max_length=128)),
                ('enterprise_uscc', fields.CharField(null=True, max_length=18)),
                ('id_tail_index', fields.CharField(max_length=64)),
                ('phone_tail_index', fields.CharField(null=True, max_length=64)),
                ('form', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('channel', fields.CharField(max_length=8)),
                ('submitted_by', fields.CharField(max_length=32)),
                ('mandate_id', fields.BigIntField(null=True)),
                ('status', fields.CharField(default='submitted', max_length=24)),
                ('missing', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('resume_status', fields.CharField(null=True, max_length=24)),
                ('instant', fields.BooleanField(default=False)),
                ('finished_at_acceptance', fields.BooleanField(default=False)),
                ('promised_days', fields.IntField(default=0)),
                ('submitted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('accepted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('deadline_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('paused_since', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('pause_kind', fields.CharField(null=True, max_length=16)),
                ('pause_reason', fields.CharField(null=True, max_length=200)),
                ('paused_working_days', fields.IntField(default=0)),
                ('warning_level', fields.SmallIntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'cases', 'app': 'ehall', 'indexes': [Index(fields=['citizen_id', 'id']), Index(fields=['department_code', 'status', 'id']), Index(fields=['hall_code', 'status', 'id']), Index(fields=['status', 'deadline_at'])], 'pk_attr': 'id', 'table_description': 'One application for one service item, from declaration to delivery of the certificate.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CaseHistory',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('ehall.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='history', on_delete=OnDelete.CASCADE)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor', fields.CharField(max_length=32)),
                ('action', fields.CharField(max_length=24)),
                ('from_status', fields.CharField(null=True, max_length=24)),
                ('to_status', fields.CharField(max_length=24)),
                ('department_code', fields.CharField(null=True, max_length=32)),
                ('comment', fields.CharField(default='', max_length=500)),
                ('detail', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'case_history', 'app': 'ehall', 'indexes': [Index(fields=['case_id', 'id'])], 'pk_attr': 'id', 'table_description': 'What happened to a case, appended with every move and never changed: who, when, from, to, why.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CaseStep',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('ehall.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='steps', on_delete=OnDelete.CASCADE)),
                ('department_code', fields.CharField(max_length=32)),
                ('hall_code', fields.CharField(max_length=12)),
                ('lead', fields.BooleanField(default=False)),
                ('status', fields.CharField(default='pending', max_length=10)),
                ('decided_by', fields.BigIntField(null=True)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('comment', fields.CharField(default='', max_length=500)),
            ],
            options={'table': 'case_step', 'app': 'ehall', 'unique_together': (('case', 'department_code'),), 'indexes': [Index(fields=['department_code', 'status', 'case_id'])], 'pk_attr': 'id', 'table_description': 'The part of one department in the review. An item reviewed in parallel (并联审批, 联合审图, 联合验收)'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Document',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('citizen_id', fields.BigIntField()),
                ('material', fields.CharField(max_length=64)),
                ('storage_key', fields.CharField(unique=True, max_length=80)),
                ('content_type', fields.CharField(max_length=32)),
                ('size', fields.IntField()),
                ('sha256', fields.CharField(max_length=64)),
                ('uploaded_by', fields.CharField(max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'case_document', 'app': 'ehall', 'indexes': [Index(fields=['citizen_id', 'material', 'id'])], 'pk_attr': 'id', 'table_description': 'A file a citizen (or staff for them) uploaded once: an ID card copy, a business licence. It is'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CaseMaterial',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('ehall.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='materials', on_delete=OnDelete.CASCADE)),
                ('document', fields.ForeignKeyField('ehall.Document', source_field='document_id', db_constraint=True, to_field='id', related_name='uses', on_delete=OnDelete.RESTRICT)),
                ('material', fields.CharField(max_length=64)),
                ('attached_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'case_material', 'app': 'ehall', 'unique_together': (('case', 'document'),), 'pk_attr': 'id', 'table_description': 'A document given for one of the required materials of a case, and every department of the case sees it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Enterprise',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('citizen_id', fields.BigIntField()),
                ('uscc', fields.CharField(max_length=18)),
                ('name', fields.CharField(max_length=128)),
                ('last_used_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'case_enterprise', 'app': 'ehall', 'unique_together': (('citizen_id', 'uscc'),), 'pk_attr': 'id', 'table_description': 'An enterprise a citizen has applied for, offered again next time (name and credit code).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Mandate',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent_id', fields.BigIntField()),
                ('hall_code', fields.CharField(max_length=12)),
                ('citizen_id', fields.BigIntField()),
                ('name_enc', fields.CharField(max_length=269)),
                ('id_number_enc', fields.CharField(max_length=160)),
                ('phone_enc', fields.CharField(max_length=160)),
                ('items', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('signature_document_id', fields.BigIntField(null=True)),
                ('reference', fields.CharField(default='', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'case_mandate', 'app': 'ehall', 'indexes': [Index(fields=['agent_id', 'id']), Index(fields=['citizen_id'])], 'pk_attr': 'id', 'table_description': 'The 委托 of a citizen to a village agent (代办员): who, for which items, signed how. The agent declares'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReceiptCounter',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('hall_code', fields.CharField(max_length=12)),
                ('day', fields.DateField()),
                ('last_seq', fields.IntField(default=0)),
            ],
            options={'table': 'case_receipt_counter', 'app': 'ehall', 'unique_together': (('hall_code', 'day'),), 'pk_attr': 'id', 'table_description': 'The last receipt sequence a hall gave on a business date, incremented under its row lock.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='form',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='review_departments',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='review_kind',
            field=fields.CharField(default='', max_length=16),
        ),
    ]
