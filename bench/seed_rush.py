"""Seeds what the rush scenarios need, through ehall's own service functions, in the environment of
the server under test (the same database and keys): real-name citizens with a session each.

    python bench/seed_rush.py citizens COUNT OUT      one access token per line

Run by bench/rush.py with the server's environment; logging in 2,000 people by SMS through the API
would measure the login, not the storm."""
from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.accounts import citizens, sessions  # noqa: E402
from backend.accounts.schemas import ProfilePatch  # noqa: E402
from backend.app import build_runtime  # noqa: E402
from backend.kit.db import close_db, init_db  # noqa: E402
from backend.kit.identity import id_number_check_char  # noqa: E402
from backend.kit.uow import unit_of_work  # noqa: E402
from backend.settings import load_settings  # noqa: E402


def _id_number(n: int) -> str:
    first17 = f"150902{1960 + n % 40}{n % 12 + 1:02d}{n % 28 + 1:02d}{n % 1000:03d}"
    return first17 + id_number_check_char(first17)


async def seed_citizens(count: int, out: Path) -> None:
    settings = load_settings()
    await init_db(settings)
    rt = build_runtime(settings)
    base = random.randrange(10**8)
    tokens = []
    try:
        for n in range(count):
            phone = f"13{(base + n) % 10**9:09d}"
            async with unit_of_work(rt) as uow:
                citizen = await citizens.register_citizen(rt, channel="sms", phone=phone, uow=uow)
                await citizens.update_profile(rt, citizen_id=citizen.id, tx=uow, patch=ProfilePatch(
                    name="牧民" + str(n), id_number=_id_number(base + n)))
                pair = await sessions.open_session(rt, kind="citizen", subject_id=citizen.id, uow=uow)
            tokens.append(pair.access_token)
    finally:
        await close_db()
    out.write_text("".join(token + "\n" for token in tokens))


def main() -> None:
    what, count, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    if what != "citizens":
        sys.exit(f"seed_rush: unknown {what!r}")
    asyncio.run(seed_citizens(count, out))


if __name__ == "__main__":
    main()
