"""The database: one Tortoise app ("ehall") holding every domain's models, migrated by Tortoise itself."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise

from backend.settings import Settings

__all__ = ["MODEL_MODULES", "tortoise_config", "init_db", "close_db", "migrate_db"]

# Every module that defines models; the migrations under backend/migrations/ are made from these.
MODEL_MODULES = [
    "backend.kit.models",
    "backend.catalog.models",
    "backend.accounts.models",
    "backend.appointments.models",
    "backend.queueing.models",
]


def _connection_url(settings: Settings) -> str:
    url = settings.database_url
    if url.startswith("sqlite://") and url not in ("sqlite://:memory:",):
        path = Path(url.removeprefix("sqlite://"))
        path.parent.mkdir(parents=True, exist_ok=True)
    return url


def tortoise_config(settings: Settings) -> dict[str, Any]:
    return {
        "connections": {"default": _connection_url(settings)},
        "apps": {
            "ehall": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "backend.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def __getattr__(name: str) -> Any:
    # `tortoise -c backend.kit.db.TORTOISE_ORM ...` (what `ehall makemigrations` runs) reads this
    if name == "TORTOISE_ORM":
        from backend.settings import load_settings

        return tortoise_config(load_settings())
    raise AttributeError(name)


async def init_db(settings: Settings) -> None:
    # Global fallback: Sanic runs each connection in its own task, which does not inherit the
    # context variable Tortoise.init() sets in the startup listener.
    await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)


async def close_db() -> None:
    await Tortoise.close_connections()


async def migrate_db(settings: Settings) -> None:
    """Apply every migration not yet applied (idempotent; safe to run at every start)."""
    from tortoise.migrations.api import migrate

    await migrate(config=tortoise_config(settings))
    await Tortoise.close_connections()
