"""A connector's counts, and how they read from its Prometheus exposition.

Upstream the Kafka connector is a Deployment of its own exposing Prometheus metrics (openfaas-keda.md
§4.2); `lagduel connector` does the same on a cluster, and `parse_metrics` reads what it exports. The
local emulation runs its connectors in process (`pipeline.openfaas.backend`) and sums the same counts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from prometheus_client.parser import text_string_to_metric_families


_SERIES = {"lagduel_connector_consumed_total": "consumed", "lagduel_connector_handled_total": "handled",
           "lagduel_connector_in_flight": "in_flight", "lagduel_connector_retries_total": "retries",
           "lagduel_connector_dead_lettered_total": "dead_lettered"}


@dataclass(frozen=True)
class ConnectorStats:
    consumed: int = 0
    handled: int = 0
    in_flight: int = 0
    retries: int = 0
    dead_lettered: int = 0

    def __add__(self, other: ConnectorStats) -> ConnectorStats:
        return ConnectorStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


def parse_metrics(text: str) -> ConnectorStats:
    """The connector's Prometheus exposition → its counts (series summed over their other labels)."""
    counts = dict.fromkeys(_SERIES.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = _SERIES.get(sample.name)
            if key is not None:
                counts[key] += sample.value
    return ConnectorStats(**{k: int(v) for k, v in counts.items()})
