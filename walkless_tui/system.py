"""What the machine is doing, for Monitor's system line (like the terminal viewers of W&B and nvtop): CPU and
memory from Linux's /proc (the whole machine and the run's own process), the GPU from torch when the app has it
loaded. No extra package; elsewhere than Linux the line says what it cannot read."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def cpu_times(proc: Path = PROC) -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs since boot, from ``/proc/stat``'s first line."""
    try:
        fields = [float(x) for x in (proc / "stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def memory(proc: Path = PROC) -> tuple[float, float] | None:
    """(used, total) bytes: total less what is available (``/proc/meminfo``)."""
    try:
        info = {line.split(":")[0]: float(line.split()[1]) * 1024 for line in (proc / "meminfo").read_text().splitlines()}
        return info["MemTotal"] - info["MemAvailable"], info["MemTotal"]
    except (OSError, ValueError, KeyError, IndexError):
        return None


def process(pid: int, proc: Path = PROC) -> tuple[float, float] | None:
    """(user + system jiffies, resident bytes) of one process (``/proc/PID/stat``)."""
    try:
        fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return float(fields[11]) + float(fields[12]), float(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def gpu() -> str | None:
    """The GPUs' memory in use, when torch is already imported (the app loads it in the background) and sees one."""
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_available():
            return None
        parts = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            parts.append(f"GPU{i} {(total - free) / 2**30:.1f}/{total / 2**30:.0f} GiB")
        return "  ".join(parts)
    except Exception:  # a driver error: no GPU line rather than a broken monitor
        return None


@dataclass
class SystemSampler:
    """Samples the system line; CPU percentages are over the time since the previous sample."""

    proc: Path = PROC
    _cpu: tuple[float, float] | None = None
    _run: tuple[int, float, float] | None = None  # (pid, its jiffies, the machine's total jiffies)

    def line(self, pid: int | None = None) -> str:
        """``CPU 73%  memory 11.2/23.5 GiB  run CPU 98% RSS 1.3 GiB  GPU0 …`` (what can be read)."""
        parts = []
        now = cpu_times(self.proc)
        cores = os.cpu_count() or 1
        if now and self._cpu and now[1] > self._cpu[1]:
            parts.append(f"CPU {100 * (now[0] - self._cpu[0]) / (now[1] - self._cpu[1]):.0f}%")
        elif now is None:
            parts.append("CPU n/a")
        mem = memory(self.proc)
        parts.append(f"memory {mem[0] / 2**30:.1f}/{mem[1] / 2**30:.1f} GiB" if mem else "memory n/a")
        ps = process(pid, self.proc) if pid else None
        if ps is not None and pid is not None:
            if now and self._run and self._run[0] == pid and now[1] > self._run[2]:
                # the process's share of one core: its jiffies over the machine's per core
                share = (ps[0] - self._run[1]) / ((now[1] - self._run[2]) / cores)
                parts.append(f"run CPU {100 * share:.0f}%")
            parts.append(f"run RSS {ps[1] / 2**30:.2f} GiB")
            if now:
                self._run = (pid, ps[0], now[1])
        self._cpu = now
        parts.append(gpu() or "no GPU")
        return "  ".join(parts)
