"""How many threads llama.cpp should use right now: the cores other processes leave idle.

llama.cpp's threads meet at a barrier after every layer, so one thread that the OS has
descheduled (another process holds its core) stalls all of them: measured on this 2-core
machine, prompt processing with one thread ran 2.4x faster than with two while another
process kept a core busy, and two threads were faster when the machine was idle
(benchmarks/RESULTS.md, "Model speed"). So before each generation the idle share of the
CPUs is sampled over a few tens of milliseconds (``/proc/stat``, Linux) and the thread count
follows it; elsewhere every core is used.

>>> choose_threads(cores=2, idle=1.9), choose_threads(cores=2, idle=0.9), choose_threads(cores=8, idle=0.1)
(2, 1, 1)
"""

from __future__ import annotations

import os
import time


def choose_threads(cores: int, idle: float | None) -> int:
    """Threads for ``idle`` idle cores out of ``cores`` (every core when unknown); at least one."""
    if idle is None:
        return max(1, cores)
    return max(1, min(cores, int(idle + 0.3)))  # a core 70% free is worth a thread


def idle_cores(window_s: float = 0.03, stat: str = "/proc/stat") -> float | None:
    """Cores' worth of idle CPU over ``window_s`` seconds, or None where /proc/stat is not readable."""
    first = _cpu_times(stat)
    if first is None:
        return None
    time.sleep(window_s)
    second = _cpu_times(stat)
    if second is None:
        return None
    total = second[0] - first[0]
    idle = second[1] - first[1]
    return (os.cpu_count() or 1) * idle / total if total > 0 else None


def _cpu_times(stat: str) -> tuple[int, int] | None:
    """(all jiffies, idle + iowait jiffies) of the aggregate "cpu" line."""
    try:
        with open(stat, encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(fields[:8]), fields[3] + fields[4]) if len(fields) >= 5 else None


def threads_now(configured: int | None) -> int:
    """``configured`` when set, else the idle cores right now."""
    cores = os.cpu_count() or 1
    return configured if configured else choose_threads(cores, idle_cores())
