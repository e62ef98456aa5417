"""How many CPU threads to compute with: the one home for that choice (training, explore, sweeps).

torch's default is one intra-op thread per core of the machine. That is wrong in three common
cases: the process may run on fewer cores (``taskset``, a container's cpuset), under a CPU quota
(cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or next to other busy processes. A PyTorch
parallel region waits for its slowest thread, so a thread that shares its core with another
process slows the whole step: measured on 2 cores with one taken by a busy loop, keras-mnist
training with 2 threads ran far slower than with 1 (BENCHMARKS.md, "Threads under contention").

``choose_threads`` is a pure function of those inputs (testable with fake values);
``auto_threads`` reads them from this machine. The choice is made once, when training starts:
a different thread count changes float summation order (1 and 2 threads give different weights
after a few steps), so a run keeps the count it started with and an exact resume reuses it.

>>> choose_threads(None, CpuInfo(affinity=2, quota=None, others=0.0)).threads
2
>>> choose_threads(None, CpuInfo(affinity=2, quota=None, others=1.0)).threads
1
>>> choose_threads(3, CpuInfo(affinity=2, quota=None, others=1.0)).reason
'forced'
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CGROUP = Path("/sys/fs/cgroup")
# another process counts as "busy" from this much of a core on (the sampled average of runnable tasks)
BUSY_FROM = 0.5


@dataclass(frozen=True)
class CpuInfo:
    """What limits our threads: cores we may run on, the cgroup quota in cores, others' runnable tasks."""

    affinity: int  # cores in this process's affinity mask
    quota: float | None  # cgroup CPU quota in cores (None: no quota)
    others: float  # runnable tasks of other processes, averaged over a short sample

    @property
    def usable(self) -> int:
        """Cores this process may use at most: the affinity mask, capped by the quota (at least 1)."""
        cores = self.affinity if self.quota is None else min(self.affinity, math.floor(self.quota + 1e-9))
        return max(1, cores)


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str  # forced | env | quiet | busy | quota | resumed | default
    cpus: CpuInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        """For the run's runtime record (``meta.json`` / checkpoint)."""
        out: dict[str, Any] = {"threads": self.threads, "reason": self.reason}
        if self.cpus is not None:
            out.update({k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self.cpus).items()})
        return out


def choose_threads(requested: int | None, cpus: CpuInfo) -> ThreadChoice:
    """``requested`` (>= 1) wins; otherwise one thread per usable core that no other process keeps busy.

    Free cores = usable cores - other runnable tasks, rounded to the nearest whole core, at least 1:
    2 cores with one busy loop beside us -> 1 thread; 8 cores with 3 busy -> 5; a quota of 1.5 cores -> 1.
    """
    if requested is not None and requested >= 1:
        return ThreadChoice(int(requested), "forced", cpus)
    usable = cpus.usable
    if cpus.others < BUSY_FROM:
        return ThreadChoice(usable, "quota" if usable < cpus.affinity else "quiet", cpus)
    free = max(1, min(usable, math.floor(usable - cpus.others + 0.5)))
    return ThreadChoice(free, "busy" if free < usable else ("quota" if usable < cpus.affinity else "quiet"), cpus)


# ---------------------------------------------------------------- reading this machine


def affinity() -> int:
    """Cores this process may run on (its affinity mask; all cores where the OS has none)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def parse_quota_v2(text: str) -> float | None:
    """``cpu.max`` ("max 100000" or "150000 100000") -> cores, or None for no limit.

    >>> parse_quota_v2("150000 100000"), parse_quota_v2("max 100000")
    (1.5, None)
    """
    parts = text.split()
    if len(parts) < 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_quota_v1(quota_text: str, period_text: str) -> float | None:
    """``cpu.cfs_quota_us`` (-1 = none) and ``cpu.cfs_period_us`` -> cores, or None.

    >>> parse_quota_v1("-1", "100000"), parse_quota_v1("50000", "100000")
    (None, 0.5)
    """
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_quota(root: Path = CGROUP, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """This process's cgroup CPU quota in cores (v2 ``cpu.max``, else v1 cfs), or None: no quota / unknown.

    Looks in the process's own cgroup (from ``/proc/self/cgroup``) and then at the root of the mount.
    """
    own_v2, own_v1 = "", ""
    try:
        for line in proc_cgroup.read_text().splitlines():
            hid, controllers, path = (line.split(":", 2) + ["", ""])[:3]
            if hid == "0" and controllers == "":
                own_v2 = path.lstrip("/")
            elif "cpu" in controllers.split(","):
                own_v1 = path.lstrip("/")
    except OSError:
        pass
    for folder in dict.fromkeys([root / own_v2, root]):  # v2: own cgroup first, then the root
        try:
            found = parse_quota_v2((folder / "cpu.max").read_text())
        except OSError:
            continue
        if found is not None:
            return found
    for folder in dict.fromkeys([root / "cpu" / own_v1, root / "cpu", root / "cpu,cpuacct" / own_v1]):
        try:
            found = parse_quota_v1((folder / "cpu.cfs_quota_us").read_text(),
                                   (folder / "cpu.cfs_period_us").read_text())
        except OSError:
            continue
        if found is not None:
            return found
    return None


def runnable_now(loadavg: Path = Path("/proc/loadavg"), tasks: Path = Path("/proc/self/task")) -> tuple[int, int] | None:
    """(runnable tasks on the machine, of which ours) right now, or None where /proc is not there."""
    try:
        running = int(loadavg.read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None
    ours = 0
    try:
        for task in tasks.iterdir():
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            if stat[stat.rfind(")") + 2:][:1] == "R":
                ours += 1
    except OSError:
        ours = 1
    return running, max(1, ours)


def other_load(samples: int = 10, interval: float = 0.02) -> float:
    """Runnable tasks of other processes, averaged over ``samples`` readings ``interval`` s apart.

    The instantaneous count sees a busy process that started a second ago (the 1-minute load average
    does not, and it still counts our own past work); averaging smooths its flicker. Without /proc,
    falls back to the 1-minute load average.
    """
    counts = []
    for i in range(samples):
        now = runnable_now()
        if now is None:
            break
        counts.append(now[0] - now[1])
        if i + 1 < samples:
            time.sleep(interval)
    if counts:
        return max(0.0, sum(counts) / len(counts))
    try:
        return max(0.0, os.getloadavg()[0])
    except (OSError, AttributeError):
        return 0.0


def read_cpus() -> CpuInfo:
    return CpuInfo(affinity=affinity(), quota=cgroup_quota(), others=other_load())


def env_threads(environ: dict[str, str] | None = None) -> int | None:
    """``OMP_NUM_THREADS`` as a whole number >= 1, or None (unset or not a number).

    torchrun sets it to 1 for each process, a sweep for each worker; torch follows it, and so do we.
    """
    value = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) >= 1 else None


def auto_threads(requested: int | None = None) -> ThreadChoice:
    """The thread count for this process now: ``requested`` if given (>= 1), else ``OMP_NUM_THREADS``
    if set, else chosen from this machine."""
    if requested is not None and requested >= 1:
        return ThreadChoice(int(requested), "forced", None)
    env = env_threads()
    if env is not None:
        return ThreadChoice(env, "env", None)
    return choose_threads(None, read_cpus())


def split_threads(workers: int) -> int:
    """Threads for each of ``workers`` processes that share this process's usable cores (at least 1)."""
    cpus = CpuInfo(affinity=affinity(), quota=cgroup_quota(), others=0.0)
    return max(1, cpus.usable // max(1, workers))
