"""Which offset of a partition may be committed: the first one not yet fully handled."""

from __future__ import annotations

from collections import deque


class OffsetTracker:
    """Tracks one partition. Records are tracked in consumption order and may finish in any order.

    `committable` is the offset to commit (Kafka's "next offset to read"): everything below it is
    handled. It never moves past a record still in flight, so a crash loses nothing.
    """

    __slots__ = ("_pending", "_done", "_next")

    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._done: set[int] = set()
        self._next: int | None = None

    def track(self, offset: int) -> None:
        if self._pending and offset <= self._pending[-1]:
            raise ValueError(f"offset {offset} tracked out of order (last {self._pending[-1]})")
        self._pending.append(offset)

    def done(self, offset: int) -> None:
        self._done.add(offset)
        while self._pending and self._pending[0] in self._done:
            head = self._pending.popleft()
            self._done.discard(head)
            self._next = head + 1

    @property
    def committable(self) -> int | None:
        """Offset to commit, or None when nothing has been handled yet."""
        # The first tracked offset is where the group's position already is, so committing it is harmless.
        return self._pending[0] if self._pending else self._next

    @property
    def in_flight(self) -> int:
        return len(self._pending) - len(self._done)
