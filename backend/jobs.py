"""Every periodic job of ehall, in one list: the one module that imports the domains' job functions.
`ehall worker` runs them (and `ehall serve` too on the embedded default); kit.jobs makes sure each
run happens once across all processes and machines. A job function takes the Runtime, is idempotent,
and returns how many things it handled."""
from __future__ import annotations

from datetime import timedelta

from backend.accounts.citizens import purge_expired_credentials
from backend.kit.jobs import Job

__all__ = ["JOBS"]

JOBS: list[Job] = [
    # spent login codes and long-expired refresh tokens
    Job("accounts.purge_expired_credentials", every=timedelta(hours=1), run=purge_expired_credentials),
]
