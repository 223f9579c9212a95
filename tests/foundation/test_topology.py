"""The topology file: loaded into immutable objects, or rejected with the key and the problem named."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import yaml

from pipeline.topology import DEFAULT_TOPOLOGY, TopologyError, load_topology, parse_topology


def raw() -> dict:
    return yaml.safe_load(DEFAULT_TOPOLOGY.read_text())


def test_reference_topology_chains_the_stages() -> None:
    t = load_topology()
    assert [s.name for s in t.stages] == ["validate", "enrich", "score"]
    assert t.stages[0].input == t.input
    assert t.stages[1].input == t.stages[0].output
    assert t.stage("score").latency_ms == 20 and t.stage("validate").latency_ms == 0  # stage key over defaults
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
