"""The channel for each kind of 3PL connection."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx

from aoms.adapters.tpl.filedrop import FileDropChannel
from aoms.adapters.tpl.rest import RestChannel
from aoms.services.handoff_ports import FulfilmentChannel


def channels(
    clock: Callable[[], datetime], client: httpx.Client | None = None
) -> dict[str, FulfilmentChannel]:
    return {"rest": RestChannel(clock, client), "file": FileDropChannel()}
