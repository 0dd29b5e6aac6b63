"""Find installed routing policy plug-ins: Python entry points in `aoms.routing_policies`.

An entry point names a policy object, or a class or factory that makes one with no arguments:

    [project.entry-points."aoms.routing_policies"]
    farthest = "acme_routing:FarthestFirst"

A plug-in that cannot be loaded is logged and listed with its error; it never stops aoms.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from aoms.domain.policies import ENTRY_POINT_GROUP, Failed, PolicyRegistry, RoutingPolicy

log = logging.getLogger(__name__)


def load_routing_policies(registry: PolicyRegistry, *, group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Register every policy the installed distributions offer; returns their names."""
    loaded = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        source = f"{ep.value} ({ep.dist.name if ep.dist else 'unknown distribution'})"
        try:
            found = ep.load()
            # A class (or a factory) makes the policy; anything else is the policy itself.
            making = isinstance(found, type) or not isinstance(found, RoutingPolicy)
            policy = found() if making and callable(found) else found
            if policy.name != ep.name:
                raise ValueError(
                    f"the entry point is named {ep.name!r} but the policy {policy.name!r}"
                )
            registry.register(policy, source=source)
        except Exception as exc:  # a broken plug-in is reported, never fatal
            log.warning("routing policy plug-in %s (%s) not loaded: %s", ep.name, source, exc)
            registry.failures.append(Failed(ep.name, source, f"{type(exc).__name__}: {exc}"))
            continue
        loaded.append(ep.name)
    return loaded
