"""The topology file: loaded into immutable objects, or rejected with the key and the problem named."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import yaml

from pipeline.knative.manifests import source_group, trigger_group, trigger_name
from pipeline.native.app import app_id
from pipeline.openfaas.connector import connector_group
from pipeline.topology import DEFAULT_TOPOLOGY, Topology, TopologyError, load_topology, parse_topology


def raw() -> dict:
    return yaml.safe_load(DEFAULT_TOPOLOGY.read_text())


def test_reference_topology_chains_the_stages() -> None:
    t = load_topology()
    assert [s.name for s in t.stages] == ["validate", "enrich", "score"]
    assert t.stages[0].input == t.input
    assert t.stages[1].input == t.stages[0].output
    assert t.stage("score").latency_ms == 50 and t.stage("validate").latency_ms == 5  # stage key over defaults
    assert t.stage("score").keda.lag_threshold == 10  # defaults reach every stage
    assert t.topics[0] == "orders" and t.topics[-1] == "orders.dlq"


def test_topology_is_immutable() -> None:
    t = load_topology()
    with pytest.raises(pydantic.ValidationError):
        t.stages[0].concurrency = 9  # type: ignore[misc]


def test_prefix_gives_fresh_topics_and_keeps_the_chain() -> None:
    t = load_topology().with_topic_prefix("x1-")
    assert all(topic.startswith("x1-") for topic in t.topics)
    assert t.stages[1].input.topic == t.stages[0].output.topic == "x1-orders.validated"
    assert t.broker_topic == "knative-broker-lagduel-x1-orders"


def test_prefixed_runs_share_no_consumer_group_with_each_other_or_the_deployed_pipeline() -> None:
    def groups(t: Topology) -> set[str]:
        return {source_group(t.namespace, t), app_id(t),
                *(trigger_group(t.namespace, trigger_name(t, st)) for st in (*t.stages, None)),
                *(connector_group(t, st) for st in t.stages)}

    deployed = load_topology()
    runs = [deployed.with_topic_prefix(p) for p in ("r1-openfaas-r0-", "r1-openfaas-r1-")]
    assert groups(runs[0]).isdisjoint(groups(runs[1]))
    assert all(groups(r).isdisjoint(groups(deployed)) for r in runs)


def test_stage_overrides_deep_merge() -> None:
    t = load_topology().with_stage_overrides(latency_ms=0, knative={"window_s": 6})
    assert all(s.latency_ms == 0 and s.knative.window_s == 6 and s.knative.target == 4 for s in t.stages)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r["defaults"].__setitem__("concurrency", 0), "stages.0.concurrency: Input should be greater than or equal to 1"),
    (lambda r: r["stages"][1].__setitem__("function", "nope"), "stages.1.function: unknown stage function 'nope'"),
    (lambda r: r["stages"][0].__setitem__("colour", "red"), "stages.0.colour: unknown key"),
    (lambda r: r["stages"][2]["output"].__setitem__("type", "dev.lagduel.order.placed"), "event types must differ"),
    (lambda r: r["stages"][0].__setitem__("min_replicas", 9), "min_replicas (9) exceeds max_replicas (5)"),
    (lambda r: r["defaults"]["keda"].__setitem__("offset_reset_policy", "newest"), "stages.0.keda.offset_reset_policy"),
    (lambda r: r["defaults"]["knative"].__setitem__("window_s", 2), "stages.0.knative.window_s"),
    (lambda r: r.pop("dead_letter_topic"), "dead_letter_topic: Field required"),
    (lambda r: r["stages"][0].__setitem__("input", {"topic": "x", "type": "y"}), "stages.0.input: not allowed"),
])
def test_invalid_topologies_are_rejected_naming_the_key(edit, message: str) -> None:
    doc = raw()
    edit(doc)
    with pytest.raises(TopologyError) as err:
        parse_topology(doc, "pipeline.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("pipeline.yaml: ")


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read topology file"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [\n")
    with pytest.raises(TopologyError, match="not valid YAML"):
        load_topology(bad)
    bad.write_text("- a list\n")
    with pytest.raises(TopologyError, match="expected a mapping"):
        load_topology(bad)


def test_initial_replicas_sets_knative_initial_scale_unless_given() -> None:
    t = load_topology()
    assert all(s.initial_replicas == 1 and s.knative.initial_scale == 1 for s in t.stages)
    pinned = t.with_stage_overrides(min_replicas=5, initial_replicas=5)
    assert all(s.knative.initial_scale == 5 for s in pinned.stages)
    own = t.with_stage_overrides(initial_replicas=3, knative={"initial_scale": 2})
    assert all((s.initial_replicas, s.knative.initial_scale) == (3, 2) for s in own.stages)
    with pytest.raises(ValueError, match="initial_replicas"):
        t.with_stage_overrides(initial_replicas=9)


def test_every_emulation_knob_is_validated() -> None:
    raw = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    t = parse_topology(raw)
    assert t.emulation.knative.trigger_max_in_flight == 50 and t.emulation.openfaas.hpa_sync_period_s == 15
    assert t.emulation.hops.activator_ms == t.emulation.hops.gateway_ms  # like hops cost alike
    for section, key, bad in (("hops", "gateway_ms", -1), ("knative", "trigger_max_in_flight", 0),
                              ("openfaas", "control_tick_s", 0), ("openfaas", "typo", 1)):
        broken = {**raw, "emulation": {**raw["emulation"], section: {**raw["emulation"][section], key: bad}}}
        with pytest.raises(TopologyError, match=f"emulation.{section}.{key}"):
            parse_topology(broken)


def test_overrides_reach_the_topology_wide_keys_and_name_a_bad_key_once() -> None:
    t = load_topology().with_stage_overrides(partitions=12, emulation={"pod_start_delay_s": 0.5}, latency_ms=3)
    assert t.partitions == 12 and t.emulation.pod_start_delay_s == 0.5 and {s.latency_ms for s in t.stages} == {3}
    with pytest.raises(TopologyError) as err:
        load_topology().with_stage_overrides(latency_ms=-1)
    assert str(err.value) == "latency_ms: Input should be greater than or equal to 0"
