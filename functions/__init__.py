"""The reference pipeline `orders` as plain, pure stage functions.

A stage takes the event's data (a JSON object) and returns one of:
an :class:`Emit` with the next event's data, ``None`` (filtered: nothing goes on),
or a :class:`Rejected` with a reason (the event ends in the dead-letter topic).

Nothing here knows Kafka, HTTP, Kubernetes, the environment or the clock.
"""

from functions.stage import STAGES, Emit, Rejected, StageFunction, StageResult, stage
from functions import validate as _validate, enrich as _enrich, score as _score  # noqa: F401  (registration)

__all__ = ["STAGES", "Emit", "Rejected", "StageFunction", "StageResult", "stage"]
