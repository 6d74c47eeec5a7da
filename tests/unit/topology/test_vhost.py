"""One source of truth for the vhost: the broker URL's."""

import pytest

from growbin.errors import ConfigError, TopologyError
from growbin.topology import loader
from growbin.topology.vhost import bind_vhost, broker_vhost

MINIMAL = """\
name: t
{vhost}exchanges:
  tasks: {{type: topic}}
queues:
  q.a:
    bindings: [{{exchange: tasks, routing_key: "a.#"}}]
"""


@pytest.mark.parametrize(
    ("url", "vhost"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/audit", "audit"),
        ("amqp://guest:guest@127.0.0.1:5672//", "/"),
        ("amqp://guest:guest@127.0.0.1:5672/", "/"),
        ("amqp://guest:guest@127.0.0.1:5672", "/"),
        ("amqp://guest:guest@127.0.0.1:5672/%2Fteam", "/team"),
        ("amqp://h/audit?heartbeat=10", "audit"),
        ("amqp://h1:5672/audit;amqp://h2:5672/audit", "audit"),
    ],
)
def test_the_vhost_is_the_one_the_broker_url_names(url, vhost):
    assert broker_vhost(url) == vhost


def test_failover_urls_naming_different_vhosts_are_refused():
    with pytest.raises(ConfigError, match=r"different vhosts \('a', 'b'\)"):
        broker_vhost("amqp://h1/a;amqp://h2/b")


@pytest.mark.parametrize("preset", loader.PRESETS)
def test_the_presets_name_no_vhost_so_the_broker_url_decides(preset):
    loaded = loader.load(preset)
    assert ("vhost",) not in loaded.lines
    bound = bind_vhost(loaded, "amqp://guest:guest@127.0.0.1:5672/audit")
    assert bound.topology.vhost == "audit"
    assert bound.topology.queues == loaded.topology.queues


def test_a_file_naming_the_urls_vhost_is_accepted():
    loaded = loader.parse(MINIMAL.format(vhost="vhost: audit\n"), source="t.yaml")
    assert bind_vhost(loaded, "amqp://h:5672/audit").topology.vhost == "audit"


def test_a_file_naming_another_vhost_than_the_url_is_refused_naming_both_and_the_fix():
    loaded = loader.parse(MINIMAL.format(vhost="vhost: /\n"), source="t.yaml")
    with pytest.raises(TopologyError) as raised:
        bind_vhost(loaded, "amqp://guest:s3cret@127.0.0.1:5672/audit")
    message = str(raised.value)
    assert message.startswith("t.yaml:2: ")
    assert "names vhost '/'" in message
    assert "GROWBIN_BROKER_URL names vhost 'audit'" in message
    assert "remove `vhost:` from the topology file" in message
    assert "s3cret" not in message
