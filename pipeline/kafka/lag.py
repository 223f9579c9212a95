"""Consumer lag as KEDA's kafka scaler defines it: log-end minus committed, per partition."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    log_end: int
    committed: int | None
    """None: the group has committed nothing for this partition."""

    @property
    def lag(self) -> int | None:
        """log-end minus committed, clamped at 0; None without a commit (shown as such, not as zero)."""
        return None if self.committed is None else max(self.log_end - self.committed, 0)


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    topic: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        """Sum of the lag of partitions with a commit."""
        return sum(p.lag or 0 for p in self.partitions)

    @property
    def uncommitted(self) -> int:
        return sum(1 for p in self.partitions if p.committed is None)

    @property
    def log_end(self) -> int:
        return sum(p.log_end for p in self.partitions)

    @property
    def committed_total(self) -> int:
        return sum(p.committed or 0 for p in self.partitions)
