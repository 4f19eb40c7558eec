"""CPU time and memory of a process, from /proc (Linux), for benchmarks and sanity bounds in tests.

    meter = ProcessMeter(pid)          # default: this process
    ...; meter.sample()                # every second or so: keeps the peak RSS
    meter.cpu_used, meter.peak_rss_mb, meter.rss_start_mb
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process (default: this one) in MiB."""
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (default: this one; all its threads) so far."""
    with open(f"/proc/{pid or os.getpid()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessMeter:
    """CPU seconds and peak RSS of a process over a stretch of time (sample() every second or so)."""

    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.monotonic)
    cpu_start: float = 0.0
    rss_start_mb: float = 0.0
    peak_rss_mb: float = 0.0
    last_rss_mb: float = 0.0

    def __post_init__(self) -> None:
        self.cpu_start = cpu_seconds(self.pid)
        self.rss_start_mb = self.peak_rss_mb = self.last_rss_mb = rss_mb(self.pid)

    def sample(self) -> float:
        self.last_rss_mb = rss_mb(self.pid)
        self.peak_rss_mb = max(self.peak_rss_mb, self.last_rss_mb)
        return self.last_rss_mb

    @property
    def cpu_used(self) -> float:
        return cpu_seconds(self.pid) - self.cpu_start

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started_at
