"""One error type for everything that keeps a broker from serving, with the log tail attached."""

from __future__ import annotations

from pathlib import Path


class BrokerError(RuntimeError):
    """The broker could not be obtained or started. `str()` is one line naming the cause."""

    def __init__(self, cause: str, log: Path | None = None, tail: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.log = log
        self.tail = tail

    def details(self) -> str:
        """The cause, where the log is, and its last lines: what a user needs to act."""
        parts = [self.cause]
        if self.log:
            parts.append(f"broker log: {self.log}")
        if self.tail:
            parts.append("last lines of the log:\n" + self.tail)
        return "\n".join(parts)


def tail_of(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("  " + line for line in text.rstrip().splitlines()[-lines:])
