from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
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
        ops.CreateModel(
            name='HallItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('hall', fields.ForeignKeyField('ehall.Hall', source_field='hall_id', db_constraint=True, to_field='code', related_name='item_links', on_delete=OnDelete.CASCADE)),
                ('item', fields.ForeignKeyField('ehall.ServiceItem', source_field='item_id', db_constraint=True, to_field='code', related_name='hall_links', on_delete=OnDelete.CASCADE)),
                ('mode', fields.CharField(max_length=8)),
            ],
            options={'table': 'hall_item', 'app': 'ehall', 'unique_together': (('hall', 'item'),), 'pk_attr': 'id', 'table_description': 'A service item a township hall accepts and passes up (mode "accept"), or one a village agency'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Topic',
            fields=[
                ('code', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('name', fields.CharField(max_length=64)),
                ('name_mn', fields.CharField(default='', max_length=128)),
                ('name_en', fields.CharField(default='', max_length=128)),
                ('position', fields.IntField(default=0)),
            ],
            options={'table': 'topic', 'app': 'ehall', 'pk_attr': 'code', 'table_description': 'A theme to browse service items by (主题: 户籍, 社保, 不动产 ...).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ServiceItemTopic',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('item', fields.ForeignKeyField('ehall.ServiceItem', source_field='item_id', db_constraint=True, to_field='code', related_name='topic_links', on_delete=OnDelete.CASCADE)),
                ('topic', fields.ForeignKeyField('ehall.Topic', source_field='topic_id', db_constraint=True, to_field='code', related_name='item_links', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'service_item_topic', 'app': 'ehall', 'unique_together': (('item', 'topic'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='CatalogRevision',
            options={'table': 'catalog_revision', 'app': 'ehall', 'pk_attr': 'id', 'table_description': 'Bumped whenever the catalogue is (re)loaded: part of the key of every kept catalogue answer.'},
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
        ops.AddField(
            model_name='Hall',
            name='latitude',
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name='Hall',
            name='longitude',
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='conditions',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='for_enterprise',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='for_personal',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='legal_basis',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='location',
            field=fields.CharField(default='', max_length=128),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='name_mn',
            field=fields.CharField(default='', max_length=256),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='phone',
            field=fields.CharField(default='', max_length=32),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='steps',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
    ]
