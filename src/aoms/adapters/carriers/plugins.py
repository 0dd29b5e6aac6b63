"""Find installed carrier plug-ins: Python entry points in `aoms.carriers`.

An entry point names a factory that takes aoms's Settings and returns a Carrier (a class whose
constructor takes the settings will do), or a Carrier object itself:

    [project.entry-points."aoms.carriers"]
    acme_freight = "acme_shipping:AcmeFreight"

A plug-in that cannot be loaded is logged and skipped; it never stops aoms.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from aoms.services.carriers import Carrier

log = logging.getLogger(__name__)
GROUP = "aoms.carriers"


def load_carriers(settings: Any, found: Iterable[EntryPoint] | None = None) -> list[Carrier]:
    carriers: list[Carrier] = []
    points = entry_points(group=GROUP) if found is None else found
    for ep in sorted(points, key=lambda e: e.name):
        try:
            obj = ep.load()
            carrier = (
                obj if isinstance(obj, Carrier) and not isinstance(obj, type) else obj(settings)
            )
            if not isinstance(carrier, Carrier):
                raise TypeError(f"{ep.value} made a {type(carrier).__name__}, not a Carrier")
        except Exception as exc:  # a broken plug-in is reported, never fatal
            log.warning("carrier plug-in %s (%s) not loaded: %s", ep.name, ep.value, exc)
            continue
        carriers.append(carrier)
    return carriers
