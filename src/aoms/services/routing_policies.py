"""Routing policy versions per shop: draft one, activate one (the previous active retires)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from aoms.domain import events as ev
from aoms.domain.errors import NotFound, UnknownLocation, UnknownShop
from aoms.domain.events import Event
from aoms.domain.policies import PolicyRegistry
from aoms.domain.routing_policy import PolicyDocument, PolicyStatus, PolicyVersion
from aoms.services.ports import Tx


@dataclass(frozen=True, slots=True)
class Activated:
    version: int
    previous: int | None  # the version retired by this activation (None if there was none)
    changed: bool  # False when the version was already the active one


def _check(tx: Tx, document: PolicyDocument, registry: PolicyRegistry) -> None:
    registry.get(document.policy)  # UnknownPolicy (unknown_routing_policy) if not registered
    named = document.location_ids()
    missing = sorted(named - tx.known_locations(named))
    if missing:
        raise UnknownLocation(
            f"the document names locations that do not exist: {', '.join(missing)}",
            field="document",
        )


def create_draft(
    tx: Tx,
    shop: str,
    document: PolicyDocument,
    note: str,
    *,
    registry: PolicyRegistry,
    now: datetime,
) -> int:
    """Store the document as the shop's next version, a draft. Returns its version number."""
    if not tx.lock_shop(shop):
        raise UnknownShop(f"no shop {shop!r}", field="domain")
    _check(tx, document, registry)
    version = tx.insert_policy_version(shop, document, note, now)
    data = {"shop": shop, "version": version, "policy": document.policy, "note": note}
    tx.emit([Event(ev.ROUTING_POLICY_DRAFTED, f"shop:{shop}", data)], now)
    return version


def activate(
    tx: Tx, shop: str, version: int, *, registry: PolicyRegistry, now: datetime
) -> Activated:
    """Make `version` the one that routes the shop's orders; the active one before it retires.

    A draft or a retired version may be activated (going back is activating an older one);
    activating the active version again changes nothing."""
    if not tx.lock_shop(shop):
        raise UnknownShop(f"no shop {shop!r}", field="domain")
    versions = {v.version: v for v in tx.policy_versions(shop)}
    target = versions.get(version)
    if target is None:
        raise NotFound(f"{shop} has no routing policy version {version}", field="version")
    if target.status is PolicyStatus.ACTIVE:
        return Activated(version, None, changed=False)
    _check(tx, target.document, registry)
    previous = _active(versions.values())
    if previous is not None:
        tx.set_policy_status(shop, previous.version, PolicyStatus.RETIRED.value)
    tx.set_policy_status(shop, version, PolicyStatus.ACTIVE.value, now)
    data = {
        "shop": shop,
        "version": version,
        "previous": previous.version if previous else None,
        "policy": target.document.policy,
    }
    tx.emit([Event(ev.ROUTING_POLICY_ACTIVATED, f"shop:{shop}", data)], now)
    return Activated(version, previous.version if previous else None, changed=True)


def _active(versions: Iterable[PolicyVersion]) -> PolicyVersion | None:
    return next((v for v in versions if v.status is PolicyStatus.ACTIVE), None)
