"""Which RabbitMQ vhost growbin acts on: the one the broker URL names, and no other.

Workers, beat and the API publish and consume on the broker URL's vhost, so plan, apply,
export, status and the dead-letter tools must look at that same vhost. A topology file names
no vhost (the presets do not); one that names a different vhost than the URL is refused rather
than silently planned against a vhost nobody uses.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from kombu import Connection

from growbin.errors import ConfigError, TopologyError
from growbin.topology.loader import LoadedTopology

DEFAULT_VHOST = "/"


def broker_vhost(broker_url: str) -> str:
    """The vhost a broker URL names: ``amqp://u:p@host:5672/audit`` -> ``audit``.

    ``//``, ``/`` or no path name the default vhost ``/``; ``%2F`` is decoded. A failover
    list (``url1;url2``) must name one vhost, since Celery uses the first URL's for all.
    Building a kombu ``Connection`` parses the URL the way Celery will, without connecting.
    """
    urls = [url.strip() for url in broker_url.split(";") if url.strip()]
    names = {str(Connection(url).virtual_host or DEFAULT_VHOST) for url in urls}
    if len(names) > 1:
        listed = ", ".join(repr(n) for n in sorted(names))
        raise ConfigError(
            f"GROWBIN_BROKER_URL lists failover URLs with different vhosts ({listed}): every "
            "URL of the list must name the same vhost; fix the paths of the URLs"
        )
    return names.pop() if names else DEFAULT_VHOST


def bind_vhost(loaded: LoadedTopology, broker_url: str) -> LoadedTopology:
    """The topology with the broker URL's vhost; refuses a file that names another one."""
    vhost = broker_vhost(broker_url)
    if ("vhost",) in loaded.lines and loaded.topology.vhost != vhost:
        named = loaded.topology.vhost
        raise TopologyError(
            f"the topology names vhost {named!r} but GROWBIN_BROKER_URL names vhost {vhost!r}; "
            "growbin acts only on the broker URL's vhost. Fix: remove `vhost:` from the "
            "topology file (the broker URL decides), or point GROWBIN_BROKER_URL at vhost "
            f"{named!r} (amqp://USER:PASSWORD@HOST:5672/{quote(named, safe='')})",
            loaded.location("vhost"),
        )
    if loaded.topology.vhost == vhost:
        return loaded
    return replace(loaded, topology=loaded.topology.model_copy(update={"vhost": vhost}))
