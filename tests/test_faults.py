"""The short fault suite, so that the full one (`python -m tests.faults`) cannot rot: the
services run apart on a real Redis while a worker is killed and Redis restarts; nothing may be
lost, and everything must come through within minutes, never after a visibility timeout of hours."""

from __future__ import annotations

import pytest

from tests.faults import SHORT, run_fault, table


@pytest.mark.slow
@pytest.mark.parametrize("fault", SHORT)
def test_nothing_is_lost_and_everything_comes_through_after_a_fault(fault, capsys):
    row = run_fault(fault, 200)
    with capsys.disabled():
        print("\n" + table([row]))
    assert (row.stored, row.alerts_delivered) == (row.articles, row.alerts_expected)
    assert row.recovery is not None  # within RECOVERY_LIMIT_SECONDS; the full suite's table shows how soon
