"""What a process has used, read from /proc (Linux): a helper of the benchmarks, not one
(`make bench` runs every module of benchmarks/ but those whose name starts with "_")."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds the process has used so far (user and system; 0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def children_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by the process's running children and theirs (a
    dashboard's check workers, `core.cores`), not by the process itself."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    return sum(cpu_seconds(int(c)) + children_cpu_seconds(int(c)) for c in children)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory in MB (`field` of /proc/<pid>/status: VmRSS in all,
    RssAnon its own heap, RssFile the file pages it maps, such as the database's)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0
