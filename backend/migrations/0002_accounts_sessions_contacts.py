from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('ehall', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CitizenContact',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('citizen', fields.ForeignKeyField('ehall.Citizen', source_field='citizen_id', db_constraint=True, to_field='id', related_name='contacts', on_delete=OnDelete.CASCADE)),
                ('hall_code', fields.CharField(max_length=12)),
                ('source', fields.CharField(max_length=16)),
                ('staff_id', fields.BigIntField(null=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'citizen_contact', 'app': 'ehall', 'indexes': [Index(fields=['citizen_id', 'hall_code', 'at'])], 'pk_attr': 'id', 'table_description': "A citizen's business with a hall, which lets that hall's staff read the citizen's personal data"},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='Citizen',
            name='id_number_index',
            field=fields.CharField(null=True, unique=True, max_length=64),
        ),
        ops.AlterField(
            model_name='Citizen',
            name='name_enc',
            field=fields.CharField(null=True, max_length=269),
        ),
        ops.AddField(
            model_name='Citizen',
            name='closed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
