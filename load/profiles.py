"""Load profiles: pure functions of elapsed time giving the target rate (Locust's `LoadTestShape.tick`).

A profile never looks at a clock; the schedule of intended send times is derived from it here, so
every run with the same profile and seed offers the identical load.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class ProfileError(ValueError):
    """A profile spec that cannot be built; the message names the parameter."""


class Profile(Protocol):
    duration_s: float

    def rate(self, t: float) -> float:
        """Target events per second at elapsed time `t` (0 ≤ t < duration_s)."""
        ...

    def disturbance(self) -> tuple[float, float]:
        """The window whose aftermath recovery metrics measure (the spike of a burst)."""
        ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Constant:
    rate_eps: float = 100.0
    duration_s: float = 60.0

    def rate(self, t: float) -> float:
        return self.rate_eps

    def disturbance(self) -> tuple[float, float]:
        return (0.0, self.duration_s)

    def describe(self) -> dict[str, Any]:
        return {"kind": "constant", "rate": self.rate_eps, "duration": self.duration_s}


@dataclass(frozen=True)
class Step:
    """`start` events/s, raised by `step` every `every` seconds."""

    start: float = 50.0
    step: float = 50.0
    every: float = 10.0
    duration_s: float = 60.0

    def rate(self, t: float) -> float:
        return self.start + self.step * math.floor(t / self.every)

    def disturbance(self) -> tuple[float, float]:
        return (min(self.every, self.duration_s), self.duration_s)

    def describe(self) -> dict[str, Any]:
        return {"kind": "step", "start": self.start, "step": self.step, "every": self.every, "duration": self.duration_s}


@dataclass(frozen=True)
class Ramp:
    """Linear from `start` to `end` events/s over the whole duration."""

    start: float = 10.0
    end: float = 500.0
    duration_s: float = 60.0

    def rate(self, t: float) -> float:
        return self.start + (self.end - self.start) * min(max(t / self.duration_s, 0.0), 1.0)

    def disturbance(self) -> tuple[float, float]:
        return (0.0, self.duration_s)

    def describe(self) -> dict[str, Any]:
        return {"kind": "ramp", "start": self.start, "end": self.end, "duration": self.duration_s}


@dataclass(frozen=True)
class Burst:
    """`baseline` events/s, plus `height` more for `length` seconds starting at `at`."""

    # Defaults: the README demo. 120 ev/s at the peak asks 2 score replicas of either serverless backend
    # (concurrency 4, 50 ms: 80 ev/s each), so one replica cannot carry it and five can (pipeline.yaml), and
    # it stays under half of what the pinned emulations carry on 2 cores (BENCHMARKS.md): at 200 ev/s the
    # emulations, broker and replicas took ~1.9 of the 2 cores and the duel was rightly flagged instrument-bound.
    baseline: float = 20.0
    height: float = 100.0
    at: float = 10.0
    length: float = 15.0
    duration_s: float = 45.0

    def rate(self, t: float) -> float:
        return self.baseline + (self.height if self.at <= t < self.at + self.length else 0.0)

    def disturbance(self) -> tuple[float, float]:
        return (self.at, min(self.at + self.length, self.duration_s))

    def describe(self) -> dict[str, Any]:
        return {"kind": "burst", "baseline": self.baseline, "height": self.height, "at": self.at,
                "length": self.length, "duration": self.duration_s}


@dataclass(frozen=True)
class Replay:
    """A recorded rate trace: (t, rate) points, each rate held until the next point."""

    points: tuple[tuple[float, float], ...] = field(default=((0.0, 0.0),))
    duration_s: float = 60.0
    source: str = ""

    def rate(self, t: float) -> float:
        current = 0.0
        for at, r in self.points:
            if at > t:
                break
            current = r
        return current

    def disturbance(self) -> tuple[float, float]:
        peak_t, peak = max(self.points, key=lambda p: p[1])
        later = [at for at, _ in self.points if at > peak_t]
        return (peak_t, min(later[0] if later else self.duration_s, self.duration_s))

    def describe(self) -> dict[str, Any]:
        return {"kind": "replay", "trace": self.source, "points": len(self.points), "duration": self.duration_s}

    @classmethod
    def from_csv(cls, path: str | Path, duration_s: float | None = None) -> Replay:
        """Rows `t,rate` (seconds, events/s); a header row is skipped."""
        try:
            rows = list(csv.reader(Path(path).read_text().splitlines()))
        except OSError as exc:
            raise ProfileError(f"trace {path}: cannot read ({exc.strerror})") from None
        points: list[tuple[float, float]] = []
        for n, row in enumerate(rows, 1):
            if not row or row[0].strip().startswith("#"):
                continue
            try:
                t, r = float(row[0]), float(row[1])
            except (ValueError, IndexError):
                if n == 1:
                    continue  # header
                raise ProfileError(f"trace {path}: line {n}: expected 't,rate' numbers, got {row!r}") from None
            if r < 0 or (points and t <= points[-1][0]):
                raise ProfileError(f"trace {path}: line {n}: times must increase and rates be >= 0")
            points.append((t, r))
        if not points:
            raise ProfileError(f"trace {path}: no (t, rate) rows")
        step = points[-1][0] - points[-2][0] if len(points) > 1 else 1.0
        return cls(tuple(points), duration_s or points[-1][0] + step, str(path))


KINDS: dict[str, type] = {"constant": Constant, "step": Step, "ramp": Ramp, "burst": Burst, "replay": Replay}
_ALIASES = {"duration": "duration_s", "rate": "rate_eps"}


def parse_profile(spec: str, duration_s: float | None = None) -> Profile:
    """`burst`, `burst:baseline=40,height=560,at=15,length=20`, `constant:rate=200`, `replay:trace=rates.csv`."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ProfileError(f"unknown profile {kind!r}; choose from {', '.join(KINDS)}")
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ProfileError(f"profile parameter {item!r}: expected key=value")
        params[_ALIASES.get(key.strip(), key.strip())] = value.strip()
    if duration_s is not None:
        params["duration_s"] = duration_s
    if kind == "replay":
        if "trace" not in params:
            raise ProfileError("profile replay needs trace=<csv file of t,rate rows>")
        d = params.get("duration_s")
        return checked(Replay.from_csv(params["trace"], float(d) if d is not None else None), kind)
    cls = KINDS[kind]
    known = set(cls.__dataclass_fields__)
    unknown = set(params) - known
    if unknown:
        raise ProfileError(f"profile {kind}: unknown parameter(s) {sorted(unknown)}; known: {sorted(known)}")
    try:
        values = {k: float(v) for k, v in params.items()}
    except ValueError as exc:
        raise ProfileError(f"profile {kind}: parameters must be numbers ({exc})") from None
    for k, v in values.items():
        if not math.isfinite(v):
            raise ProfileError(f"profile {kind}: {k.removesuffix('_s').removesuffix('_eps')} must be a finite number, "
                               f"not {v}")
    return checked(cls(**values), kind)


def profile_text(d: dict[str, Any]) -> str:
    """A described profile as the `--profile` and `--duration` a user would type: `burst:baseline=20,height=180,
    at=10,length=15 for 45 s`."""
    params = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items()
                      if k not in ("kind", "duration", "points"))
    return f"{d['kind']}{':' + params if params else ''} for {d.get('duration', 0):g} s"


def from_description(d: dict[str, Any]) -> Profile:
    """The profile a run's manifest describes (`Profile.describe()`), built again through `parse_profile`."""
    params = ",".join(f"{k}={v}" for k, v in d.items() if k not in ("kind", "duration", "points"))
    return parse_profile(f"{d['kind']}:{params}" if params else str(d["kind"]), d.get("duration"))


MAX_DURATION_S = 86_400.0
"""A day of load: longer schedules are refused rather than run for ever."""
MAX_RATE_EPS = 1_000_000.0
"""About five times what Kafka's own producer tool reaches on a 2-core machine: beyond it a run only measures
how far behind the generator falls."""
MAX_EVENTS = 20_000_000
"""Every seq's intended send time is held in memory (8 bytes each) for the backlog's time lag."""


def checked(profile: Profile, kind: str) -> Profile:
    """Refuse a profile no run can carry out, naming the limit (instead of hanging or running an empty duel)."""
    if not 0 < profile.duration_s <= MAX_DURATION_S:
        raise ProfileError(f"profile {kind}: duration must be > 0 and at most {MAX_DURATION_S:,.0f} s, "
                           f"not {profile.duration_s:g}")
    rates = [profile.rate(t) for t in _grid(profile.duration_s)]
    if any(r < 0 for r in rates):
        raise ProfileError(f"profile {kind}: rates must be >= 0")
    if max(rates, default=0.0) > MAX_RATE_EPS:
        raise ProfileError(f"profile {kind}: a rate of {max(rates):,.0f} events/s exceeds the generator's limit of "
                           f"{MAX_RATE_EPS:,.0f}")
    events = sum(rates) * 0.5  # the grid's step
    if events > MAX_EVENTS:
        raise ProfileError(f"profile {kind}: about {events:,.0f} events exceed the limit of {MAX_EVENTS:,}; "
                           "shorten the duration or lower the rate")
    if events < 1:
        raise ProfileError(f"profile {kind}: the schedule sends no event (rates are all 0)")
    return profile


def _grid(duration_s: float, step: float = 0.5) -> Iterator[float]:
    t = 0.0
    while t < duration_s:
        yield t
        t += step


def schedule(profile: Profile, step_s: float = 0.01) -> Iterator[float]:
    """Intended send offsets (seconds from start): event k goes when the integral of the rate reaches k.

    Exact for piecewise-constant rates; a ramp is sampled every `step_s`.
    """
    owed = 0.0  # integral of the rate up to t
    k = 0
    t = 0.0
    n_steps = math.ceil(profile.duration_s / step_s)
    for i in range(n_steps):
        t = i * step_s
        dt = min(step_s, profile.duration_s - t)
        r = profile.rate(t)
        if r > 0:
            end = owed + r * dt
            while k <= end - 1e-9:
                yield t + (k - owed) / r
                k += 1
            owed = end


def schedule_array(profile: Profile, step_s: float = 0.01) -> np.ndarray:
    """`schedule` as one float64 array, value for value (the same arithmetic, a step at a time)."""
    parts: list[np.ndarray] = []
    owed = 0.0
    k = 0
    for i in range(math.ceil(profile.duration_s / step_s)):
        t = i * step_s
        dt = min(step_s, profile.duration_s - t)
        r = profile.rate(t)
        if r > 0:
            end = owed + r * dt
            stop = max(math.floor(end - 1e-9) + 1, k)  # k runs while k <= end - 1e-9
            if stop > k:
                parts.append(t + (np.arange(k, stop, dtype=np.float64) - owed) / r)
                k = stop
            owed = end
    return np.concatenate(parts) if parts else np.zeros(0)


def expected_count(profile: Profile, step_s: float = 0.01) -> int:
    return sum(1 for _ in schedule(profile, step_s))
