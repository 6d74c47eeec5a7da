"""Fix hints for an unreachable service that fit the environment.

`make services` starts the services of a development checkout; in staging or production it
means nothing, so there the hint names what an operator checks instead.
"""

from __future__ import annotations

from growbin.settings import Environment

LOCAL = frozenset({Environment.DEVELOPMENT, Environment.TEST})


def start_service_hint(env: Environment, service: str, variable: str) -> str:
    """What to do when ``service`` (named by the setting ``variable``) cannot be reached."""
    if env in LOCAL:
        return (
            f"start {service} (`make services` starts the local services) "
            f"or point {variable} at a running server"
        )
    return (
        f"check that {service} is running and reachable from this host "
        f"(firewall, DNS, credentials) and that {variable} names it"
    )
