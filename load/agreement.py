"""How well a simulation agrees with another run of the same scenario (an emulated duel, usually).

The rules (issue "the same policies at cluster scale", validation): per backend and stage, the desired and the
ready replica counts within ±1 replica on at least 90 % of the 1 s samples both runs have; the pipeline's peak
backlog and time to recover within 20 % of each other (or within one 1 s sample, for values near zero).
Samples are paired by time, each of the reference's with the other run's nearest (the emulation samples at
fractional seconds). `read_run` and `scenario_of` are the readers of a run folder here; the rest is pure.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from load.profiles import Profile, from_description
from load.runfolder import read_summary
from pipeline.keys import KeySpec, parse_keys
from pipeline.topology import Topology

REPLICA_TOLERANCE = 1
REPLICA_SHARE = 0.9
METRIC_SHARE = 0.2
METRICS = ("peak_backlog", "time_to_recover_s")
DUEL_ACKED_AGE_S = 0.125
"""How old, on average, the acknowledged count is when a duel's 1 s sample reads it: the generator reports it
after each 0.25 s wait for its workers (load/generator.py `run_load` → load/backend_run.py `progressed`), so a
duel's backlog (acknowledged − out) misses on average 0.125 s of orders; a simulation of the duel reads it alike."""


@dataclass(frozen=True)
class StageAgreement:
    stage: str
    samples: int
    desired_share: float
    ready_share: float

    @property
    def ok(self) -> bool:
        return self.samples > 0 and min(self.desired_share, self.ready_share) >= REPLICA_SHARE


@dataclass(frozen=True)
class MetricAgreement:
    metric: str
    reference: float | None
    simulated: float | None

    @property
    def ok(self) -> bool:
        a, b = self.reference, self.simulated
        if a is None or b is None:
            return a is None and b is None  # both never recovered
        return abs(a - b) <= METRIC_SHARE * max(abs(a), abs(b), 1e-9) or abs(a - b) <= 1.0

    @property
    def text(self) -> str:
        return f"{self.metric}: reference {self.reference}, simulated {self.simulated}"


@dataclass(frozen=True)
class BackendAgreement:
    backend: str
    stages: tuple[StageAgreement, ...]
    metrics: tuple[MetricAgreement, ...]
    reference_bound: bool = False
    """The reference run was instrument-bound: where they differ, the machine may be why, not the model."""

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stages) and all(m.ok for m in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "agrees": self.ok, "reference_instrument_bound": self.reference_bound,
                "stages": {s.stage: {"samples": s.samples, "desired_within_1": round(s.desired_share, 3),
                                     "ready_within_1": round(s.ready_share, 3), "agrees": s.ok} for s in self.stages},
                "metrics": {m.metric: {"reference": m.reference, "simulated": m.simulated, "agrees": m.ok}
                            for m in self.metrics}}


Timeline = Sequence[tuple[float, int, int]]
"""(t, desired, ready) per sample."""


def replica_shares(reference: Timeline, simulated: Timeline) -> tuple[int, float, float]:
    """(samples paired, share with desired within ±1, share with ready within ±1)."""
    if not reference or not simulated:
        return 0, 0.0, 0.0
    times = [t for t, _, _ in simulated]
    end = times[-1]
    desired = ready = n = 0
    for t, d, r in reference:
        if t < 0 or t > end:
            continue
        i = bisect.bisect_left(times, t)
        j = min((k for k in (i - 1, i) if 0 <= k < len(times)), key=lambda k: abs(times[k] - t))
        _, sd, sr = simulated[j]
        n += 1
        desired += abs(sd - d) <= REPLICA_TOLERANCE
        ready += abs(sr - r) <= REPLICA_TOLERANCE
    return n, (desired / n if n else 0.0), (ready / n if n else 0.0)


def compare(reference: dict[str, Any], simulated: dict[str, Any]) -> list[BackendAgreement]:
    """Per backend both runs have: `read_run` documents."""
    out = []
    for backend, ref in reference["timelines"].items():
        sim = simulated["timelines"].get(backend)
        if sim is None:
            continue
        stages = tuple(StageAgreement(st, *replica_shares(tl, sim.get(st, []))) for st, tl in ref.items())
        metrics = tuple(MetricAgreement(m, reference["headline"][backend].get(m), simulated["headline"][backend].get(m))
                        for m in METRICS)
        out.append(BackendAgreement(backend, stages, metrics, backend in reference.get("bound", ())))
    return out


def read_run(folder: Path) -> dict[str, Any]:
    """A run folder's first run per backend (its series are the first run's): headline and replica timeline."""
    summary = read_summary(folder)
    timelines: dict[str, dict[str, list[tuple[float, int, int]]]] = {}
    for backend in summary["backends"]:
        rows = json.loads((folder / "series" / f"{backend}.json").read_text())["samples"]
        per: dict[str, list[tuple[float, int, int]]] = {}
        for r in rows:
            if r["stage"] in summary["stages"]:
                per.setdefault(r["stage"], []).append((float(r["t"]), int(r["desired"] or 0), int(r["ready"] or 0)))
        timelines[backend] = per
    first = {b: (s.get("repeats") or [s])[0] for b, s in summary["backends"].items()}
    return {"headline": {b: r["headline"] for b, r in first.items()}, "timelines": timelines,
            "bound": [b for b, r in first.items() if r.get("instrument", {}).get("bound")]}


@dataclass(frozen=True)
class Scenario:
    """What a run ran, from its manifest: enough to simulate the same."""

    profile: Profile
    topology: Topology
    backends: tuple[str, ...]
    seed: int
    invalid_share: float
    drain_timeout_s: float
    settle_s: float
    lead_s: float | None
    """The median time the run's backends took to their starting line (the simulated backends start that long
    before the load; the generator's own start adds a little more in the emulation)."""
    clocks: dict[str, dict[str, dict[str, float | None]]] | None = None
    """Per backend, its first run's control-plane clocks at the load's start (start_line `control_clock`; runs
    from before it was recorded have none): the simulator starts each policy on that phase."""
    measured: dict[str, dict[str, Any]] | None = None
    """Per backend, its first run's measured data plane (calibration: `pod_start_s`, `replica_hop_ms`)."""
    keys: KeySpec = KeySpec()
    """How the run drew its orders' keys (manifest `keys`; uniform for runs from before it was recorded)."""


def scenario_of(folder: Path) -> Scenario:
    path = folder / "manifest.json"
    try:
        m = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a lagduel run manifest ({exc})") from None
    waits = sorted(float(s["waited_s"]) for runs in (m.get("start_line") or {}).values() for s in runs[:1]
                   if s.get("waited_s") is not None)
    # The first run of each backend: the one whose series are written, hence the one compared.
    clocks = {b: runs[0]["control_clock"] for b, runs in (m.get("start_line") or {}).items()
              if runs and runs[0].get("control_clock")}
    profile = from_description(m["profile"])
    calibration = {b: s.get("calibration") or {} for b, s in (m.get("settings_in_force") or {}).items()}
    measured = {b: {k: c[k] for k in ("pod_start_s", "replica_hop_ms") if c.get(k)} for b, c in calibration.items()
                if c.get("pod_start_s") or c.get("replica_hop_ms")}
    for b in measured:
        e2e = baseline_e2e_s(folder, b, profile.disturbance()[0])
        if e2e is not None:
            measured[b]["baseline_e2e_s"] = e2e
        measured[b]["acked_age_s"] = DUEL_ACKED_AGE_S
        phase = sample_phase_s(folder, b)
        if phase is not None:
            measured[b]["sample_phase_s"] = phase
    return Scenario(profile, Topology.model_validate(m["topology"]),
                    tuple(b for b in dict.fromkeys(b for _, b in m.get("order", []))), int(m["seed"]),
                    float(m.get("invalid_share", 0.1)), float(m.get("drain_timeout_s", 180.0)),
                    float(m.get("settle_s", 45.0)), waits[len(waits) // 2] if waits else None, clocks or None,
                    measured or None, parse_keys(m.get("keys", "uniform")))


def sample_phase_s(folder: Path, backend: str) -> float | None:
    """Where in each second of the load's clock the run's sampler read (the most common tenth of a second of its
    sample times: the sampler ticks every second from wherever the start line left it, drifting a little)."""
    try:
        rows = json.loads((folder / "series" / f"{backend}.json").read_text())["samples"]
    except (OSError, KeyError, json.JSONDecodeError):
        return None
    tenths = Counter(round(float(r["t"]) % 1.0 * 10) % 10 for r in rows if float(r["t"]) >= 0)
    return tenths.most_common(1)[0][0] / 10 if tenths else None


def baseline_e2e_s(folder: Path, backend: str, until_s: float) -> float | None:
    """The run's end-to-end time before its disturbance (the median of the sink's per-second maximum): an
    order's transit with nothing queued, Kafka hops and the sink's read included (None: under 3 such seconds)."""
    try:
        rows = json.loads((folder / "series" / f"{backend}.json").read_text())["sink"]
    except (OSError, KeyError, json.JSONDecodeError):
        return None
    e2e = sorted(float(r["max_e2e_ms"]) for r in rows if r["t"] < until_s and r.get("max_e2e_ms"))
    return round(e2e[len(e2e) // 2] / 1000, 3) if len(e2e) >= 3 else None


def check(reference: Path, simulated: Path) -> list[BackendAgreement]:
    """Compare a simulated run folder with the run it simulated; the verdicts go to its agreement.json."""
    result = compare(read_run(reference), read_run(simulated))
    (simulated / "agreement.json").write_text(json.dumps(
        {"reference": str(reference), "rules": {"replicas_within": REPLICA_TOLERANCE, "share": REPLICA_SHARE,
                                                "metrics_within": METRIC_SHARE},
         "backends": [a.to_dict() for a in result]}, indent=2) + "\n")
    return result
