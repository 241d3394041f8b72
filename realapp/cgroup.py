"""A CPU limit like a container's: a cgroup with a CFS quota that processes are moved into.

Kubernetes gives a container a CPU limit as a CFS bandwidth quota on its cgroup: every process
of the container shares ``cpus`` x 100 ms of CPU per 100 ms period, and once they have used it
all they wait (*throttled*) until the next period. A CPU hog in the container (the usual CPU
contention fault: a stressor started inside the pod) uses the quota up, so the service in the
same container is throttled with it. :class:`CpuLimit` makes such a cgroup (the cgroup v1 ``cpu``
controller, or cgroup v2 when the root delegates ``cpu``) and removes it on exit, moving what is
left in it back to the root group. It needs write access to the cgroup file system (root).
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
_counter = itertools.count()


def _root() -> tuple[Path, int]:
    """(root group, cgroup version) of a writable cpu controller."""
    if (V1 / "cpu.cfs_quota_us").exists() and os.access(V1, os.W_OK):
        return V1, 1
    sub = V2 / "cgroup.subtree_control"
    if sub.exists() and "cpu" in sub.read_text().split() and os.access(V2, os.W_OK):
        return V2, 2
    raise RuntimeError("a CPU limit needs a writable cgroup cpu controller (cgroup v1 /sys/fs/cgroup/cpu, or "
                       "cgroup v2 with 'cpu' in /sys/fs/cgroup/cgroup.subtree_control) and root; found neither")


class CpuLimit:
    """A cgroup limited to ``cpus`` CPUs (a CFS quota of ``cpus`` x :data:`PERIOD_US` per period)."""

    def __init__(self, cpus: float) -> None:
        if cpus <= 0:
            raise ValueError(f"cpus must be positive, got {cpus}")
        self.cpus = cpus
        self.root, self.version = _root()
        self.path = self.root / f"realapp-{os.getpid()}-{next(_counter)}"

    def __enter__(self) -> "CpuLimit":
        self.path.mkdir()
        quota = int(self.cpus * PERIOD_US)
        if self.version == 1:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        return self

    def add(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the group."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled(self) -> dict[str, int]:
        """The group's throttling counters (``nr_periods``, ``nr_throttled``, throttled time)."""
        stat = (self.path / "cpu.stat").read_text().split()
        return {k: int(v) for k, v in zip(stat[::2], stat[1::2])}

    def __exit__(self, *exc: object) -> None:
        try:
            for pid in (self.path / "cgroup.procs").read_text().split():
                try:
                    (self.root / "cgroup.procs").write_text(pid)
                except OSError:  # the process ended meanwhile
                    pass
        finally:
            self.path.rmdir()
