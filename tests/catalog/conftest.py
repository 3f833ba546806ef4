from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

from backend.kit import clock


@pytest.fixture
def frozen_clock() -> Iterator[Callable[[str], None]]:
    """Stop business time at an ISO instant ("2026-10-10T10:00:00+08:00"); the server in this process
    sees the same time. Unfrozen after the test."""
    def freeze(at: str) -> None:
        clock.freeze(datetime.fromisoformat(at))

    yield freeze
    clock.unfreeze()
