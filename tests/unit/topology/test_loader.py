import pytest

from growbin.errors import TopologyError
from growbin.topology import loader

MINIMAL = """\
name: t
exchanges:
  tasks: {type: topic}
queues:
  q.a:
    bindings: [{exchange: tasks, routing_key: "a.#"}]
"""


@pytest.mark.parametrize("preset", loader.PRESETS)
def test_every_preset_loads(preset):
    loaded = loader.load(preset)
    assert loaded.topology.name == preset
    assert loaded.source == f"preset:{preset}"


def test_location_gives_the_line_of_a_nested_key():
    loaded = loader.parse(MINIMAL, source="t.yaml")
    assert loaded.location("queues", "q.a", "bindings") == "t.yaml:6"
    assert loaded.location("queues", "q.a", "no-such-key") == "t.yaml:5"


def test_bad_yaml_names_the_line():
    with pytest.raises(TopologyError, match=r"t.yaml:3: not valid YAML"):
        loader.parse("name: t\nqueues:\n  q: a: b\n", source="t.yaml")


def test_an_unknown_key_names_the_line_and_suggests_the_right_key():
    text = MINIMAL + "    message_tll: 30\n"
    with pytest.raises(TopologyError) as info:
        loader.parse(text, source="t.yaml")
    message = str(info.value)
    assert "t.yaml:7" in message
    assert "unknown key 'message_tll'" in message
    assert "did you mean 'message_ttl'" in message


def test_a_wrong_type_names_the_path_and_the_value():
    text = MINIMAL + "    max_length: lots\n"
    with pytest.raises(TopologyError, match=r"t.yaml:7: queues.q.a.max_length: .*'lots'"):
        loader.parse(text, source="t.yaml")


def test_a_bad_enum_value_lists_the_allowed_ones():
    text = MINIMAL.replace("{type: topic}", "{type: topical}")
    with pytest.raises(TopologyError, match=r"t.yaml:3: .*'topical' is not allowed.*'topic'"):
        loader.parse(text, source="t.yaml")


def test_a_duplicate_key_is_refused_rather_than_silently_overwritten():
    text = MINIMAL + "  q.a:\n    bindings: []\n"
    with pytest.raises(TopologyError, match=r"t.yaml:7: duplicate key 'q.a'"):
        loader.parse(text, source="t.yaml")


def test_an_empty_file_is_refused():
    with pytest.raises(TopologyError, match="empty"):
        loader.parse("", source="t.yaml")


def test_a_missing_file_names_the_presets():
    with pytest.raises(TopologyError, match="production, slo, pipeline"):
        loader.load("/nonexistent/topology.yaml")


def test_a_soft_limit_above_the_hard_limit_is_refused():
    text = MINIMAL + "profiles:\n  p: {queues: [q.a], soft_time_limit: 10, time_limit: 5}\n"
    with pytest.raises(
        TopologyError, match=r"t.yaml:8: profiles.p: soft_time_limit \(10.0\) must be below"
    ):
        loader.parse(text, source="t.yaml")


def test_a_schedule_entry_needs_exactly_one_timing():
    text = MINIMAL + "schedule:\n  s: {task: x}\n"
    with pytest.raises(TopologyError, match="exactly one of `cron`"):
        loader.parse(text, source="t.yaml")


def test_dump_round_trips_a_preset():
    loaded = loader.load("production")
    again = loader.parse(loader.dump(loaded.topology), source="dump")
    assert again.topology == loaded.topology
