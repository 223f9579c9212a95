"""Retry decisions as a pure policy: which outcomes are retried, and how long to wait."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.topology import Delivery

# knative.md §1.6: the Kafka dispatcher retries >=500, 404, 408, 409, 429, connection errors and timeouts.
KNATIVE_RETRYABLE = frozenset({404, 408, 409, 429})
# The OpenFaaS connector retries 429 (watchdog max_inflight), 5xx and timeouts (openfaas-keda.md §1.3).
CONNECTOR_RETRYABLE = frozenset({429})


@dataclass(frozen=True)
class RetryPolicy:
    retry: int
    backoff_policy: str = "exponential"
    backoff_delay_s: float = 0.2
    retryable: frozenset[int] = KNATIVE_RETRYABLE
    retry_5xx: bool = True

    @classmethod
    def from_delivery(cls, d: Delivery, retryable: Iterable[int] = KNATIVE_RETRYABLE) -> RetryPolicy:
        return cls(d.retry, d.backoff_policy, d.backoff_delay_s, frozenset(retryable))

    def is_retryable(self, status: int | None) -> bool:
        """None stands for a transport failure (connection error or timeout): always retryable."""
        return status is None or status in self.retryable or (self.retry_5xx and status >= 500)

    def should_retry(self, status: int | None, attempt: int) -> bool:
        """After failed attempt number `attempt` (1 = the first try), is there another one?"""
        return attempt <= self.retry and self.is_retryable(status)

    def delay(self, retry_number: int) -> float:
        """Wait before retry `retry_number` (1-based). knative.md §1.6: exponential backoffDelay × 2^n,
        so the first retry waits twice the delay; linear backoffDelay × n."""
        if self.backoff_policy == "linear":
            return self.backoff_delay_s * retry_number
        return self.backoff_delay_s * round(2**retry_number)
