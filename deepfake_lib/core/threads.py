"""CPU threads that share the machine: PyTorch's intra-op threads sized to the cores other processes leave free.

On a 2-core machine a training with two OpenMP threads beside one other busy process ran at 0.29 of its speed
alone, not half: each parallel region waits for its slowest thread, and a thread the scheduler has parked behind the
other process holds up every operation. Sized to the free cores (measured from ``/proc/stat`` over a fraction of a
second, at every epoch), the training keeps its threads on cores it can have and ran at 0.66 of its speed alone,
as fast as before when alone (``benchmarks/contention.py``, docs/performance.md). Letting waiting threads sleep
(``OMP_WAIT_POLICY=PASSIVE``) helped beside a busy process too but cost 30% alone, so the wait policy stays libgomp's.

An explicit ``OMP_NUM_THREADS`` (the user's, or the test suite's share per worker) is left alone.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)
STAT = Path("/proc/stat")


def _cpu_times(stat: Path = STAT) -> tuple[int, int] | None:
    """``(busy, total)`` jiffies of all CPUs from the first line of ``/proc/stat``; None where there is none. Time of
    niced processes counts as free: they yield their core to a training that wants it."""
    try:
        fields = [int(x) for x in stat.read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[1] + fields[3] + (fields[4] if len(fields) > 4 else 0)  # nice + idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


def busy_cores(interval: float = 0.25, stat: Path = STAT) -> float | None:
    """How many of the machine's cores were busy over the next ``interval`` seconds (0 .. cpu count), with this
    process idle while it measures; None where ``/proc/stat`` cannot be read."""
    first = _cpu_times(stat)
    time.sleep(interval)
    second = _cpu_times(stat)
    if first is None or second is None or second[1] <= first[1]:
        return None
    return (second[0] - first[0]) / (second[1] - first[1]) * (os.cpu_count() or 1)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def free_threads(busy: float | None, cores: int) -> int:
    """Threads for ``cores`` usable cores of which ``busy`` are taken by other processes: the free ones, at least 1
    (a core more than half busy counts as taken)."""
    if busy is None:
        return cores
    return max(1, min(cores, round(cores - busy - 1e-9)))


def share_cpu(interval: float = 0.25) -> int:
    """Set PyTorch's intra-op threads to the cores other processes leave free now, unless ``OMP_NUM_THREADS`` was
    given; returns the thread count in use."""
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    threads = free_threads(busy_cores(interval), usable_cores())
    if threads != torch.get_num_threads():
        log.info("CPU: %d thread(s) (%d core(s), the others busy)", threads, usable_cores())
        torch.set_num_threads(threads)
    return threads
