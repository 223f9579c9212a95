"""Peak resident memory (VmHWM) of the processes a run is made of: broker, generator, replica, dispatcher."""

from __future__ import annotations

from pathlib import Path

import psutil


def peak_rss_mib(pid: int) -> float:
    """The process's high-water mark of resident memory, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def find(cmdline_part: str) -> list[int]:
    """Live processes whose command line contains `cmdline_part`."""
    out = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if cmdline_part in " ".join(proc.info["cmdline"] or ()):
            out.append(proc.info["pid"])
    return out


def peak_of(cmdline_part: str) -> float | None:
    """The largest peak RSS among processes matching `cmdline_part`, or None when none runs."""
    peaks = []
    for pid in find(cmdline_part):
        try:
            peaks.append(peak_rss_mib(pid))
        except (OSError, RuntimeError):
            pass
    return max(peaks) if peaks else None
