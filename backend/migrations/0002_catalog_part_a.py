from tortoise import migrations
from tortoise.migrations import operations as ops

class Migration(migrations.Migration):
    dependencies = [('ehall', '0001_initial')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='CatalogRevision',
            options={'table': 'catalog_revision', 'app': 'ehall', 'pk_attr': 'id', 'table_description': 'Bumped whenever the catalogue is (re)loaded: part of the key of every kept catalogue answer.'},
        ),
    ]
