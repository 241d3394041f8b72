"""realapp.cgroup: the CPU limit the cpu_contention fault puts the service and its hogs under."""
from __future__ import annotations

import time

import pytest

from realapp.cgroup import CpuLimit
from realapp.stack import start_hog, stop_hog


def _limit(cpus: float) -> CpuLimit:
    try:
        return CpuLimit(cpus)
    except RuntimeError as exc:  # no writable cgroup cpu controller here (not root, no delegation)
        pytest.skip(str(exc))


def test_a_hog_in_the_group_is_throttled_and_the_group_goes_away():
    limit = _limit(0.2)
    with limit:
        hog = start_hog(5)
        try:
            limit.add(hog.pid)
            assert str(hog.pid) in (limit.path / "cgroup.procs").read_text().split()
            time.sleep(0.6)
            assert limit.throttled()["nr_throttled"] >= 2  # 20 ms per 100 ms period: throttled in each
        finally:
            stop_hog(hog)
    assert not limit.path.exists()


def test_a_limit_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        CpuLimit(0)
