"""Seeds what bench/consult.py needs, through ehall's own service functions, in the environment of the
server under test: citizens with a session each, and staff of one department with a session each.

    python bench/seed_consult.py CITIZENS STAFF DEPARTMENT_GRANT OUT_DIR
        writes OUT_DIR/citizens.txt and OUT_DIR/staff.txt, one access token per line

Logging 550 people in through the API would measure the login, not the conversations."""
from __future__ import annotations

import asyncio
import random
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.accounts import citizens, sessions  # noqa: E402
from backend.accounts.staff import create_staff  # noqa: E402
from backend.app import build_runtime  # noqa: E402
from backend.kit.auth import Grant  # noqa: E402
from backend.kit.db import close_db, init_db  # noqa: E402
from backend.kit.uow import unit_of_work  # noqa: E402
from backend.settings import load_settings  # noqa: E402


async def seed(citizen_count: int, staff_count: int, grant: str, out: Path) -> None:
    settings = load_settings()
    await init_db(settings)
    rt = build_runtime(settings)
    role, _, scope = grant.partition("@")
    hall, _, department = scope.partition("/")
    base = random.randrange(10**8)
    citizen_tokens, staff_tokens = [], []
    try:
        for n in range(citizen_count):
            async with unit_of_work(rt) as uow:
                citizen = await citizens.register_citizen(rt, channel="sms", phone=f"13{(base + n) % 10**9:09d}", uow=uow)
                pair = await sessions.open_session(rt, kind="citizen", subject_id=citizen.id, uow=uow)
            citizen_tokens.append(pair.access_token)
        for _ in range(staff_count):
            # a password nobody uses: the session is opened here, as a login would
            member = await create_staff(rt, username=f"bench-{uuid.uuid4().hex[:10]}", password=uuid.uuid4().hex,
                                        display_name="压测", grants=[Grant(role, hall=hall or None,
                                                                          department=department or None)])
            async with unit_of_work(rt) as uow:
                pair = await sessions.open_session(rt, kind="staff", subject_id=member.id, uow=uow)
            staff_tokens.append(pair.access_token)
    finally:
        await rt.wechat.close()
        await rt.official_account.close()
        if rt.redis is not None:
            await rt.redis.aclose()
        await close_db()
    (out / "citizens.txt").write_text("".join(t + "\n" for t in citizen_tokens))
    (out / "staff.txt").write_text("".join(t + "\n" for t in staff_tokens))


if __name__ == "__main__":
    asyncio.run(seed(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])))
