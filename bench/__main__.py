"""`make bench`: measure every hot path on an embedded broker; write BENCHMARKS.md and bench/results.json.

    python -m bench [--quick] [--only generator,hop,pipeline,pinned,sampler]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.broker import open_kafka
from pipeline.broker.maven import resolve_jars
from pipeline.kafka import KafkaSettings, wait_for_broker
from pipeline.settings import read_environment
from pipeline.topology import load_topology

from bench import hop as hops
from bench.generator import max_sustained_rate
from bench.harness import RECORD_BYTES, Figure, machine, repeat
from bench.memory import peak_rss_mib
from bench.perftest import producer_perf_test
from bench.pipeline import pinned_pipeline, pipeline_rate, plain_chain_rate
from bench.report import render
from bench.sampler import cpu_per_sample_ms

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("generator", "hop", "pipeline", "pinned", "sampler")


def target(text: str, measured: float | None, goal: float, higher_is_better: bool = True) -> dict[str, Any]:
    met = None if measured is None else (measured >= goal if higher_is_better else measured <= goal)
    return {"target": text, "measured": measured, "met": met}


def generator_section(settings: KafkaSettings, runs: int, env_libs: Path, memory: dict[str, float]) -> dict[str, Any]:
    topology = load_topology()
    gen = [repeat(f"lagduel load, {w} worker{'s' * (w > 1)}", "events/s", runs,
                  lambda _i, w=w: max_sustained_rate(settings, topology, w),
                  note="highest constant rate held on schedule (p99 lateness ≤ 50 ms, ≤ 1 % late)") for w in (1, 2)]
    memory["load generator worker"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    java = repeat("kafka-producer-perf-test (Java)", "records/s", runs,
                  lambda _i: producer_perf_test(env_libs, settings, f"perf-{uuid.uuid4().hex[:6]}", 300_000,
                                                RECORD_BYTES, topology.partitions),
                  note=f"{RECORD_BYTES}-byte records, acks=all, same broker, full speed")
    ratio = Figure("ratio: 2 workers / Java tool", "×", [g / j for g, j in zip(gen[1].values, java.values)])
    return {"title": "Load generator vs Kafka's own producer", "figures": [f.as_dict() for f in (*gen, java, ratio)],
            "about": "Open-loop: every event has an intended send time; a rate counts only if the schedule held.",
            "targets": [target("2 workers ≥ 0.5 × kafka-producer-perf-test", ratio.median, 0.5)]}


def hop_section(settings: KafkaSettings, runs: int) -> dict[str, Any]:
    topology = load_topology()
    figs = {name: repeat(f"({name[0]}) {name[2:].replace('_', ' ')}", "events/s", runs,
                         lambda _i, fn=fn: fn(settings, topology, topology.partitions)) for name, fn in hops.HOPS.items()}
    a = figs["a_confluent_loop"]
    ratios = [Figure(f"ratio ({k[0]}) / (a)", "×", [x / y for x, y in zip(f.values, a.values)]) for k, f in figs.items() if k != "a_confluent_loop"]
    r = {f.name[7]: f.median for f in ratios}
    return {"title": "One stage hop (validate, 0 ms latency)",
            "about": f"{hops.HOP_EVENTS:,} prefilled 512-byte orders; rate from the first output record to the last.",
            "figures": [f.as_dict() for f in (*figs.values(), *ratios)],
            "targets": [target("(b) native Faust ≥ 0.5 × (a)", r.get("b"), 0.5),
                        target("(c) Knative path ≥ 0.25 × (a)", r.get("c"), 0.25),
                        target("(d) OpenFaaS path ≥ 0.25 × (a)", r.get("d"), 0.25)]}


def pipeline_section(settings: KafkaSettings, runs: int, events: int, memory: dict[str, float]) -> dict[str, Any]:
    topology = load_topology()
    figs = []
    for backend in ("native", "knative", "openfaas"):
        for latency in (0, 20):
            figs.append(repeat(f"{backend}, every stage {latency} ms", "events/s", runs,
                               lambda _i, b=backend, lat=latency: pipeline_rate(b, settings, topology, lat, events, memory),
                               note=f"{events:,} orders, from 1 replica (cold starts and scale-out included)"))
    return {"title": "Whole pipeline, end to end", "figures": [f.as_dict() for f in figs],
            "about": "validate → enrich → score with the reference scaling settings; replicas scale freely."}


PINNED_RATE = 2000.0
PINNED_DURATION_S = 15.0


def pinned_section(settings: KafkaSettings, runs: int) -> dict[str, Any]:
    """Each serverless emulation with every stage pinned at 5 replicas and 0 ms service time, under a constant
    2,000 orders/s, against the plain 3-stage chain measured in the same run."""
    topology = load_topology()
    chain = repeat("(p) plain 3-stage confluent-kafka chain", "events/s", runs,
                   lambda _i: plain_chain_rate(settings, topology))
    figs, targets, calibration = [chain], [], {}
    for backend in ("knative", "openfaas"):
        results: list[Any] = []

        def one(_i: int, b: str = backend) -> float:
            r = pinned_pipeline(b, settings, topology, PINNED_RATE, PINNED_DURATION_S)
            results.append(r)
            return r.sustained

        fig = repeat(f"{backend}, pinned at 5 replicas, offered {PINNED_RATE:,.0f}/s", "events/s", runs, one)
        figs += [fig, Figure(f"ratio {backend} / (p)", "×", [x / y for x, y in zip(fig.values, chain.values)]),
                 Figure(f"{backend}, orders lost", "orders", [float(r.lost) for r in results])]
        targets.append(target(f"{backend} pinned pipeline ≥ 2,000 events/s sustained", fig.median, 2000))
        calibration[backend] = results[-1].calibration if results else {}
    per_hop = ", ".join(f"{b} {c.get('cpu_us_per_event_per_hop', float('nan')):,.0f} µs"
                        for b, c in calibration.items())
    return {"title": "Pinned pipeline: the emulation's own ceiling",
            "about": f"Every stage at 5 replicas, 0 ms service time, {PINNED_RATE:,.0f} orders/s for "
                     f"{PINNED_DURATION_S:g} s; sustained = 99 % of the orders over the time until 99 % arrived. "
                     f"The emulator's own CPU per event and stage hop (dispatchers or connectors and the control "
                     f"plane, replicas excluded): {per_hop}.",
            "figures": [f.as_dict() for f in figs], "targets": targets}


def sampler_section(settings: KafkaSettings, runs: int) -> dict[str, Any]:
    figs = [repeat(f"CPU per sample, {p:,} partitions × 3 groups", "ms", runs,
                   lambda _i, p=p: cpu_per_sample_ms(settings, p)) for p in (100, 1000)]
    return {"title": "Lag sampler", "figures": [f.as_dict() for f in figs],
            "about": "Process CPU time of one 1 s sample in steady state (median of 20): log-end offsets of 5 topics, 3 groups' commits, time-lag tables full.",
            "targets": [target("< 50 ms per sample at 1,000 partitions", figs[1].median, 50, higher_is_better=False)]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per figure instead of three")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--pipeline-events", type=int, default=2500)
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    env = read_environment()
    started = time.monotonic()
    memory: dict[str, float] = {}
    # A broker of its own (unless LAGDUEL_BOOTSTRAP names one): benchmarks create many topics, and nothing
    # else should share the machine's broker while they measure.
    with open_kafka(env, env.bootstrap) if env.bootstrap else _fresh_broker(env) as kafka:
        settings = KafkaSettings(kafka.bootstrap)
        wait_for_broker(settings)
        print(f"benchmarks on Kafka at {kafka.bootstrap} ({kafka.origin})", flush=True)
        sections = []
        if "generator" in only:
            sections.append(generator_section(settings, runs, resolve_jars(env.cache_dir, env.kafka_version), memory))
        if "hop" in only:
            sections.append(hop_section(settings, runs))
        if "pipeline" in only:
            sections.append(pipeline_section(settings, 1 if args.quick else 2, args.pipeline_events, memory))
        if "pinned" in only:
            sections.append(pinned_section(settings, runs))
        if "sampler" in only:
            sections.append(sampler_section(settings, 1))  # each figure is already a median of 20 samples
        broker_pid = _broker_pid(kafka)
        if broker_pid:
            memory["Kafka broker (JVM, -Xmx512m)"] = peak_rss_mib(broker_pid)
    memory["benchmark process (Knative dispatchers in-process)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sections.append({"title": "Peak memory (RSS)", "about": "High-water mark of resident memory over the runs above.",
                     "figures": [Figure(k, "MiB", [v]).as_dict() for k, v in sorted(memory.items())]})
    results = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "kafka_version": env.kafka_version,
               "machine": machine(), "sections": sections, "wall_s": round(time.monotonic() - started, 1)}
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (ROOT / "BENCHMARKS.md").write_text(render(results) + f"\nThe suite took {results['wall_s'] / 60:.1f} minutes.\n\n"
                                        + (ROOT / "bench" / "notes.md").read_text())
    print(f"wrote BENCHMARKS.md and bench/results.json in {results['wall_s'] / 60:.1f} min")


def _fresh_broker(env: Any) -> Any:
    import shutil
    import tempfile

    from pipeline.broker import Kafka
    from pipeline.broker.locate import start_embedded, version_of

    workdir = Path(tempfile.mkdtemp(prefix="lagduel-bench-"))
    broker = start_embedded(env, workdir)
    return Kafka(broker.bootstrap, "embedded, for the benchmarks", version_of(broker.libs), broker.log_path,
                 lambda: (broker.stop(), shutil.rmtree(workdir, ignore_errors=True)))


def _broker_pid(kafka: Any) -> int | None:
    from bench.memory import find

    pids = find(str(kafka.log_path.parent)) if kafka.log_path else []
    return pids[0] if pids else None


if __name__ == "__main__":
    main()
