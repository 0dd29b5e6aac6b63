"""The routing side of a store transaction: what an order is routed with (the shop's policy,
rate card, active version and experiment, capacities, tags, weights, scarcity prices), the
shop's routing policy versions and A/B experiments, and the orders of a wave."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, exists, func, select, update

from aoms.adapters.db import schema as t
from aoms.adapters.db.statements import SQL
from aoms.domain.experiments import Experiment
from aoms.domain.handoff import AT_WAREHOUSE
from aoms.domain.orders import OrderStatus
from aoms.domain.policies import PolicyRegistry, RoutingPolicy
from aoms.domain.routing import Policy, RateCard
from aoms.domain.routing_policy import PolicyDocument, PolicyStatus, PolicyVersion
from aoms.services.ports import RoutingInputs


class RoutingTx:
    """Mixed into `SqlTx`: these methods use its connection and settings."""

    conn: Connection
    dialect: str
    default_policy: Policy
    policies: PolicyRegistry

    # -- routing inputs -------------------------------------------------------------------
    def routing_inputs(self, shop: str, currency: str) -> RoutingInputs:
        found = self.conn.execute(SQL.policy, {"shop": shop}).first()
        row = self.conn.execute(SQL.rate_card, {"currency": currency}).first()
        active = None
        if found is not None and found.active_version is not None:
            active = self.conn.execute(SQL.active_policy, {"shop": shop}).first()
        return RoutingInputs(
            policy=str(Policy(found.routing_policy) if found else self.default_policy),
            card=_parsed_card(row.card) if row else None,
            active=_version(active) if active else None,
            experiment=self._experiment(shop)
            if found is not None and found.experiment_id is not None
            else None,
        )

    def _experiment(self, shop: str) -> Experiment | None:
        found = self.conn.execute(SQL.running_experiment, {"shop": shop}).first()
        if found is None:
            return None
        rp = t.routing_policies.c
        arms = {
            r.version: _version(r)
            for r in self.conn.execute(
                select(t.routing_policies).where(
                    rp.shop == shop, rp.version.in_([found.arm_a, found.arm_b])
                )
            )
        }
        return Experiment(found.id, arms[found.arm_a], arms[found.arm_b], found.share_b)

    def routing_policy(self, name: str) -> RoutingPolicy:
        return self.policies.get(name)

    def shipped_today(self, location_ids: Sequence[str], day_start: datetime) -> dict[str, int]:
        """Fulfilment orders created at each location since `day_start` (and not replaced).

        On PostgreSQL the locations' rows are locked first, in id order (after the stock rows,
        as every routing transaction takes them), so two orders cannot both take a location's
        last shipment of the day."""
        ids = sorted(set(location_ids))
        if not ids:
            return {}
        if self.dialect == "postgresql":
            self.conn.execute(SQL.lock_locations, {"ids": ids}).all()
        rows = self.conn.execute(
            SQL.shipped_since,
            {"ids": ids, "since": day_start, "until": day_start + timedelta(days=1)},
        ).all()
        return {r.location_id: int(r.n) for r in rows}

    def open_shipments_before(self, order_id: int, before: datetime) -> dict[str, int]:
        """The order's open fulfilment orders per location where it first got one before
        `before`: the places in an earlier day's capacity it still holds (also when it was
        routed again since, and its fulfilment order there is a new one)."""
        f = t.fulfilment_orders.c
        is_open = func.sum(case((f.status == "open", 1), else_=0))
        rows = self.conn.execute(
            select(f.location_id, is_open)
            .where(f.order_id == order_id)
            .group_by(f.location_id)
            .having(func.min(f.created_at) < before, is_open > 0)
        ).all()
        return {str(loc): int(n) for loc, n in rows}

    def open_shipments_since(self, order_id: int, since: datetime) -> dict[str, int]:
        """The order's open fulfilment orders made in the day from `since`, per location:
        those counted in that day's capacity (as `shipped_today` counts them)."""
        f = t.fulfilment_orders.c
        rows = self.conn.execute(
            select(f.location_id, func.count())
            .where(
                f.order_id == order_id,
                f.status == "open",
                f.created_at >= since,
                f.created_at < since + timedelta(days=1),
            )
            .group_by(f.location_id)
        ).all()
        return {str(loc): int(n) for loc, n in rows}

    def sku_tags(self, skus: Iterable[str]) -> dict[str, list[str]]:
        p = t.products.c
        rows = self.conn.execute(
            select(p.sku, p.tags).where(p.sku.in_(sorted(set(skus))), p.tags.is_not(None))
        ).all()
        return {r.sku: [str(x) for x in r.tags] for r in rows}

    def product_grams(self, skus: Iterable[str]) -> dict[str, int]:
        """Grams per unit from the catalogue, for SKUs that have a weight there."""
        p = t.products.c
        rows = self.conn.execute(
            select(p.sku, p.grams).where(p.sku.in_(sorted(set(skus))), p.grams > 0)
        ).all()
        return {r.sku: int(r.grams) for r in rows}

    def stock_prices(self, shop: str, skus: Iterable[str]) -> dict[tuple[str, str], float]:
        """The shop's last scarcity prices of these SKUs, (location, SKU) -> minor units."""
        sp = t.stock_prices.c
        rows = self.conn.execute(
            select(sp.location_id, sp.sku, sp.price_minor).where(
                sp.shop == shop, sp.sku.in_(sorted(set(skus)))
            )
        ).all()
        return {(r.location_id, r.sku): float(r.price_minor) for r in rows}

    # -- routing policy versions ------------------------------------------------------------
    def lock_shop(self, shop: str) -> bool:
        """Lock the shop's row (its policy versions change one writer at a time); False if
        there is no such shop."""
        query = select(t.shops.c.domain).where(t.shops.c.domain == shop)
        if self.dialect == "postgresql":
            query = query.with_for_update()
        return self.conn.execute(query).first() is not None

    def shop_currency(self, shop: str) -> str | None:
        row = self.conn.execute(select(t.shops.c.currency).where(t.shops.c.domain == shop))
        value = row.scalar()
        return str(value) if value is not None else None

    def known_locations(self, ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(ids))
        if not wanted:
            return set()
        rows = self.conn.execute(select(t.locations.c.id).where(t.locations.c.id.in_(wanted)))
        return set(rows.scalars())

    def policy_versions(self, shop: str) -> list[PolicyVersion]:
        rp = t.routing_policies.c
        rows = self.conn.execute(
            select(t.routing_policies).where(rp.shop == shop).order_by(rp.version)
        ).all()
        return [_version(r) for r in rows]

    def insert_policy_version(
        self, shop: str, document: PolicyDocument, note: str, now: datetime
    ) -> int:
        rp = t.routing_policies.c
        last = self.conn.execute(select(func.max(rp.version)).where(rp.shop == shop)).scalar()
        version = int(last or 0) + 1
        self.conn.execute(
            t.routing_policies.insert().values(
                shop=shop,
                version=version,
                status=PolicyStatus.DRAFT.value,
                note=note,
                document=document.as_dict(),
                created_at=now,
            )
        )
        return version

    def running_experiment(self, shop: str) -> int | None:
        found = self.conn.execute(SQL.running_experiment, {"shop": shop}).first()
        return int(found.id) if found else None

    def insert_experiment(
        self, shop: str, arm_a: int, arm_b: int, share_b: float, note: str, now: datetime
    ) -> int:
        e = t.routing_experiments
        new_id = self.conn.execute(
            e.insert()
            .values(
                shop=shop, arm_a=arm_a, arm_b=arm_b, share_b=share_b, status="running",
                note=note, started_at=now,
            )
            .returning(e.c.id)
        ).scalar_one()  # fmt: skip
        return int(new_id)

    def stop_experiment(self, shop: str, experiment_id: int, now: datetime) -> bool:
        """Stop it if it is running; False if it was not."""
        e = t.routing_experiments.c
        done = self.conn.execute(
            update(t.routing_experiments)
            .where(e.id == experiment_id, e.shop == shop, e.status == "running")
            .values(status="stopped", stopped_at=now)
        )
        return bool(done.rowcount)

    def set_policy_status(
        self, shop: str, version: int, status: str, now: datetime | None = None
    ) -> None:
        rp = t.routing_policies.c
        values: dict[str, Any] = {"status": status}
        if now is not None:
            values["activated_at"] = now
        self.conn.execute(
            update(t.routing_policies)
            .where(rp.shop == shop, rp.version == version)
            .values(**values)
        )

    def wave_orders(self, shop: str, since: datetime) -> list[int]:
        """The shop's fully reserved orders whose open fulfilment orders were all made at or
        after `since` (routed in this wave) and none of which a warehouse has yet (no
        fulfilment order past `open` that was not cancelled or rejected), in id order."""
        o, f = t.orders.c, t.fulfilment_orders.c
        open_fo = select(f.id).where(f.order_id == o.id, f.status == "open")
        handed_off = select(f.id).where(
            f.order_id == o.id, f.status.in_(sorted(s.value for s in AT_WAREHOUSE))
        )
        rows = self.conn.execute(
            select(o.id)
            .where(
                o.shop == shop,
                o.status == OrderStatus.ROUTED.value,
                exists(open_fo.where(f.created_at >= since)),
                ~exists(open_fo.where(f.created_at < since)),
                ~exists(handed_off),
            )
            .order_by(o.id)
        )
        return list(rows.scalars())


@functools.lru_cache(maxsize=64)
def _card_from_json(text: str) -> RateCard:
    return RateCard.from_dict(json.loads(text))


@functools.lru_cache(maxsize=256)
def _document_from_json(text: str) -> PolicyDocument:
    return PolicyDocument.from_dict(json.loads(text))


def _version(row: Any) -> PolicyVersion:
    """A stored policy version; its document is parsed once per distinct text."""
    return PolicyVersion(
        shop=row.shop,
        version=row.version,
        status=PolicyStatus(row.status),
        document=_document_from_json(json.dumps(row.document, sort_keys=True)),
    )


def _parsed_card(card: dict[str, Any]) -> RateCard:
    """Parse a stored rate card once per version, not once per order."""
    return _card_from_json(json.dumps(card, sort_keys=True))
