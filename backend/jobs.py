"""Every periodic job of ehall, in one list: the one module that imports the domains' job functions.
`ehall worker` runs them (and `ehall serve` too on the embedded default); kit.jobs makes sure each
run happens once across all processes and machines. A job function takes the Runtime, is idempotent,
and returns how many things it handled."""
from __future__ import annotations

from datetime import timedelta

from backend.accounts.citizens import purge_expired_credentials
from backend.appointments.service import mark_no_shows, remind_tomorrow
from backend.cases.supervision import watch_deadlines
from backend.kit.jobs import Job
from backend.queueing.service import close_day
from backend.runtime import Runtime

__all__ = ["JOBS"]


async def _close_past_days(rt: Runtime) -> int:
    # every hall, every business day that is over: a hall that missed a night catches up at once
    return (await close_day(rt)).closed

JOBS: list[Job] = [
    # spent login codes and long-expired refresh tokens
    Job("accounts.purge_expired_credentials", every=timedelta(hours=1), run=purge_expired_credentials),
    # bookings not checked in by the end of their check-in window become no-shows (爽约), and enough
    # of them suspend booking; a few minutes late is fine, the slot is over either way
    Job("appointments.mark_no_shows", every=timedelta(minutes=5), run=mark_no_shows),
    # the day before a booking, one reminder (notify sends it by WeChat or SMS)
    Job("appointments.remind_tomorrow", every=timedelta(minutes=15), run=remind_tomorrow),
    # tickets still open from a business day that is over are closed, their counts kept
    Job("queueing.close_past_days", every=timedelta(minutes=15), run=_close_past_days),
    # 黄牌 before an application's deadline, 红牌 once it has passed (电子监察), to the responsible staff
    Job("cases.watch_deadlines", every=timedelta(minutes=5), run=watch_deadlines),
]
