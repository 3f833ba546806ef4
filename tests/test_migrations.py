"""The committed migrations describe the models exactly: a model change without its migration fails here."""
import subprocess
import sys
from pathlib import Path

CHECK = """
import asyncio
from tortoise.cli.cli import tortoise_cli_context
from tortoise.migrations.autodetector import MigrationAutodetector
from backend.kit.db import tortoise_config
from backend.settings import Settings

async def pending():
    config = tortoise_config(Settings(database_url="sqlite://:memory:"))
    async with tortoise_cli_context(config) as ctx:
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    return [op for writer in writers for op in writer.operations]

print(len(asyncio.run(pending())))
"""


def test_no_model_change_lacks_a_migration():
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "0", "run: ehall makemigrations -n <what changed>"
