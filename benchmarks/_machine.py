"""What the benchmarks print about the machine they ran on."""

from __future__ import annotations

import os
import platform


def describe() -> str:
    """Cores, CPU model, memory and Python version, for the header of a benchmark's output."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown memory"
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
            memory = f"{kib / 1024**2:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({model}), {memory}, Python {platform.python_version()}"
