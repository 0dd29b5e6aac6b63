"""The queue of what aoms tells Shopify (services.shopify_pushes): which events make a push,
and the rows that carry each push until Shopify has it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from aoms.adapters.db import schema as t
from aoms.adapters.db.engine import upsert_insert
from aoms.adapters.db.store import SqlStore
from aoms.domain import events as ev
from aoms.domain.events import Event
from aoms.services.returns_ports import RETURN_DECIDED
from aoms.services.shopify_pushes import FULFILMENT, HOLD, RELEASE, RETURN, Push

LEASE = timedelta(minutes=5)  # a sender that dies mid-push frees it after this
UNFINISHED = ("pending", "sending")
PUSH_FAILED = "shopify.push_failed"
PUSH_EVENTS = frozenset({ev.FULFILMENT_SHIPPED, ev.HOLD_PLACED, ev.HOLD_RELEASED, RETURN_DECIDED})
# Shopify's names for the carriers it links tracking numbers for (shopify.dev, "supported
# tracking companies"); a carrier aoms knows by another code goes as it is.
COMPANIES = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL Express",
    "dhl_express": "DHL Express",
    "canada_post": "Canada Post",
    "royal_mail": "Royal Mail",
    "australia_post": "Australia Post",
    "dpd": "DPD",
    "gls": "GLS",
}


def pushes_for(
    conn: Connection, event_id: int, event: Event, shops: Iterable[str]
) -> list[dict[str, Any]]:
    """The pushes an event makes (rows for `shopify_pushes`): none unless it is about a
    Shopify order of a shop aoms has an access token for."""
    if event.name not in PUSH_EVENTS:
        return []
    if event.data.get("outside"):
        return []  # Shopify itself said these units were fulfilled: nothing to tell it
    if event.name == RETURN_DECIDED:
        return _return_push(conn, event_id, event, shops)
    if not event.aggregate.startswith("order:"):
        return []
    o = t.orders.c
    order_id = int(event.aggregate.split(":", 1)[1])
    order = conn.execute(select(o.shop, o.channel, o.external_id).where(o.id == order_id)).first()
    if order is None or order.channel != "shopify" or order.shop not in set(shops):
        return []
    payload: dict[str, Any] = {"order_gid": f"gid://shopify/Order/{order.external_id}"}
    if event.name == ev.FULFILMENT_SHIPPED:
        kind = FULFILMENT
        lines = _line_items(conn, order_id, event.data)
        if not lines:
            return []  # units of lines Shopify does not know (added in aoms): nothing to tell
        carrier = event.data.get("carrier")
        payload |= {
            "lines": lines,
            "location_gid": _location_gid(conn, order.shop, event.data.get("shipped_from")),
            "tracking": {
                "number": event.data.get("tracking_number"),
                "company": COMPANIES.get(str(carrier).lower(), carrier) if carrier else None,
                "url": event.data.get("tracking_url"),
            },
            "notify_customer": True,
            "fulfilment_order_id": event.data.get("fulfilment_order_id"),
        }
    else:
        kind = HOLD if event.name == ev.HOLD_PLACED else RELEASE
        payload |= {"hold_type": event.data["kind"], "notes": event.data.get("reason")}
    return [{"shop": order.shop, "order_id": order_id, "kind": kind,
             "source": f"event:{event_id}", "payload": payload}]  # fmt: skip


def _return_push(
    conn: Connection, event_id: int, event: Event, shops: Iterable[str]
) -> list[dict[str, Any]]:
    """A return aoms approved, of a Shopify order, that Shopify does not know yet."""
    if event.data.get("decision") != "approve" or not event.aggregate.startswith("return:"):
        return []
    r, o, i, ol = t.returns.c, t.orders.c, t.return_items.c, t.order_lines.c
    return_id = int(event.aggregate.split(":", 1)[1])
    found = conn.execute(
        select(r.order_id, r.external_id, o.shop, o.channel, o.external_id.label("order_ext"))
        .join(t.orders, o.id == r.order_id)
        .where(r.id == return_id)
    ).first()
    if found is None or found.external_id is not None:
        return []  # opened in Shopify: Shopify has it
    if found.channel != "shopify" or found.shop not in set(shops):
        return []
    items = conn.execute(
        select(ol.external_id, i.quantity, i.reason)
        .join(t.order_lines, and_(ol.order_id == found.order_id, ol.line_no == i.line_no))
        .where(i.return_id == return_id)
        .order_by(i.id)
    ).all()
    lines = [{"line_item_gid": f"gid://shopify/LineItem/{x.external_id}",
              "quantity": int(x.quantity), "reason": x.reason}
             for x in items if x.external_id]  # fmt: skip
    if not lines:
        return []
    payload = {"order_gid": f"gid://shopify/Order/{found.order_ext}", "return_id": return_id,
               "lines": lines}  # fmt: skip
    return [{"shop": found.shop, "order_id": found.order_id, "kind": RETURN,
             "source": f"event:{event_id}", "payload": payload}]  # fmt: skip


def _line_items(conn: Connection, order_id: int, data: Mapping[str, Any]) -> dict[str, int]:
    """Shopify line item gid -> units, from the event's units by order line."""
    ol = t.order_lines.c
    ids = {
        r.line_no: r.external_id
        for r in conn.execute(select(ol.line_no, ol.external_id).where(ol.order_id == order_id))
    }
    units: dict[str, int] = {}
    for line_no, qty in dict(data.get("lines") or {}).items():
        external = ids.get(int(line_no))
        if external and int(qty) > 0:
            key = f"gid://shopify/LineItem/{external}"
            units[key] = units.get(key, 0) + int(qty)
    return units


def _location_gid(conn: Connection, shop: str, location_id: object) -> str | None:
    """The Shopify location mapped to an aoms location (None when it is not mapped)."""
    if not location_id:
        return None
    m = t.shopify_locations.c
    return conn.execute(
        select(m.location_gid).where(m.shop == shop, m.location_id == str(location_id))
    ).scalar()


def aoms_location(conn: Connection, shop: str, shopify_location_id: object) -> str | None:
    """The aoms location mapped to a Shopify location (by its number), if any."""
    if shopify_location_id is None:
        return None
    m = t.shopify_locations.c
    gid = f"gid://shopify/Location/{shopify_location_id}"
    found = conn.execute(select(m.location_id).where(m.shop == shop, m.location_gid == gid))
    location = found.scalar()
    return str(location) if location is not None else None


class SqlShopifyPushes:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def enqueue(self, rows: Sequence[Mapping[str, Any]], now: datetime) -> None:
        """Queue pushes; one already queued from the same source is left as it is."""
        if rows:
            with self.store.writer() as conn:
                enqueue(conn, rows, now)

    def claim(self, shops: Sequence[str], now: datetime, limit: int) -> list[Push]:
        """Due pushes that are the oldest unfinished push of their order, leased to this
        sender (a compare-and-set on the row, so two senders never take the same one)."""
        if not shops:
            return []
        p = t.shopify_pushes.c
        q = t.shopify_pushes.alias("q")
        head = (
            select(func.min(q.c.id))
            .where(q.c.order_id == p.order_id, q.c.status.in_(UNFINISHED))
            .scalar_subquery()
        )
        due = or_(
            and_(p.status == "pending", p.next_attempt_at <= now),
            and_(p.status == "sending", p.claimed_until < now),
        )
        with self.store.read() as conn:
            rows = conn.execute(
                select(p.id, p.shop, p.order_id, p.kind, p.payload, p.attempts, p.status,
                       p.claimed_until)
                .where(p.shop.in_(list(shops)), due, p.id == head)
                .order_by(p.id)
                .limit(limit)
            ).all()  # fmt: skip
        taken: list[Push] = []
        for r in rows:
            with self.store.writer() as conn:
                won = conn.execute(
                    update(t.shopify_pushes)
                    .where(p.id == r.id, p.status == r.status,
                           p.claimed_until.is_(None) if r.claimed_until is None
                           else p.claimed_until == r.claimed_until)
                    .values(status="sending", claimed_until=now + LEASE)
                ).rowcount  # fmt: skip
            if won == 1:
                payload = dict(r.payload)
                if r.kind == FULFILMENT:
                    payload["claimed"] = self._claimed(r.id, r.order_id, payload)
                if r.kind == HOLD and self._released_since(r.id, r.order_id, payload):
                    payload["superseded"] = True
                taken.append(Push(r.id, r.shop, r.order_id, r.kind, payload, r.attempts))
        return taken

    def _released_since(self, push_id: int, order_id: int, payload: Mapping[str, Any]) -> bool:
        """Whether a release of the same hold type was queued after this hold push (a hold
        push retried by hand after the hold was released must not hold the order again)."""
        p = t.shopify_pushes.c
        with self.store.read() as conn:
            rows = conn.execute(
                select(p.payload).where(p.order_id == order_id, p.kind == RELEASE, p.id > push_id)
            ).scalars()
            return any((row or {}).get("hold_type") == payload.get("hold_type") for row in rows)

    def _claimed(self, push_id: int, order_id: int, payload: Mapping[str, Any]) -> dict[str, int]:
        """Units the order's other answered fulfilment pushes fulfilled under the same
        tracking number (services.shopify_pushes.already_there)."""
        number = (payload.get("tracking") or {}).get("number")
        if not number:
            return {}
        p = t.shopify_pushes.c
        with self.store.read() as conn:
            rows = conn.execute(
                select(p.payload, p.result).where(
                    p.order_id == order_id, p.kind == FULFILMENT, p.status == "done",
                    p.id != push_id,
                )
            ).all()  # fmt: skip
        claimed: dict[str, int] = {}
        for row in rows:
            if ((row.payload or {}).get("tracking") or {}).get("number") != number:
                continue
            for gid, units in ((row.result or {}).get("fulfilled") or {}).items():
                claimed[gid] = claimed.get(gid, 0) + int(units)
        return claimed

    def done(self, push: Push, result: Mapping[str, Any], now: datetime) -> None:
        """The push is answered; a return Shopify made keeps its Shopify id on aoms's return
        (in the same transaction), by which Shopify's returns/* webhooks find it."""
        p = t.shopify_pushes.c
        with self.store.writer() as conn:
            made = result.get("return_gid")
            if push.kind == RETURN and made:
                conn.execute(
                    update(t.returns)
                    .where(t.returns.c.id == int(push.payload["return_id"]),
                           t.returns.c.external_id.is_(None))
                    .values(external_id=str(made).rsplit("/", 1)[-1])
                )  # fmt: skip
            conn.execute(
                update(t.shopify_pushes)
                .where(p.id == push.id)
                .values(status="done", result=dict(result), done_at=now, claimed_until=None,
                        attempts=push.attempts + 1, last_error=None)
            )  # fmt: skip

    def failed(self, push: Push, error: str, retry_at: datetime | None, now: datetime) -> None:
        """Try again at `retry_at`, or (None) give up: the push is failed, with an event."""
        p = t.shopify_pushes.c
        with self.store.transaction() as tx:
            tx.conn.execute(
                update(t.shopify_pushes)
                .where(p.id == push.id)
                .values(status="pending" if retry_at else "failed", last_error=error[:2000],
                        attempts=push.attempts + 1, next_attempt_at=retry_at or now,
                        claimed_until=None)
            )  # fmt: skip
            if retry_at is None:
                data = {"push_id": push.id, "kind": push.kind, "shop": push.shop,
                        "error": error[:500]}  # fmt: skip
                tx.emit([Event(PUSH_FAILED, f"order:{push.order_id}", data)], now)

    def retry(self, push_id: int, now: datetime) -> bool:
        """Send a failed push again now; False if there is no failed push of that id."""
        p = t.shopify_pushes.c
        with self.store.writer() as conn:
            return bool(
                conn.execute(
                    update(t.shopify_pushes)
                    .where(p.id == push_id, p.status == "failed")
                    .values(status="pending", next_attempt_at=now, attempts=0)
                ).rowcount
            )

    def listing(
        self, shop: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        p = t.shopify_pushes.c
        query = select(t.shopify_pushes).order_by(p.id.desc()).limit(limit)
        if shop is not None:
            query = query.where(p.shop == shop)
        if status is not None:
            query = query.where(p.status == status)
        with self.store.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def enqueue(conn: Connection, rows: Sequence[Mapping[str, Any]], now: datetime) -> None:
    values = [
        {**r, "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
        for r in rows
    ]
    stmt = upsert_insert(conn, t.shopify_pushes)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["source", "kind"]), values)


def first_word_of(conn: Connection, order_id: int, fulfillment_id: object, now: datetime) -> bool:
    """Whether this is the first word of this Shopify fulfillment (by its id), kept in
    `channel_fulfilments`: only then do its units leave; a repeat or an update of it
    (delivered) changes only the dates."""
    if fulfillment_id is None:
        return True
    row = {"order_id": order_id, "external_id": str(fulfillment_id)[:64], "recorded_at": now}
    stmt = (
        upsert_insert(conn, t.channel_fulfilments)
        .values(row)
        .on_conflict_do_nothing(index_elements=["order_id", "external_id"])
        .returning(t.channel_fulfilments.c.order_id)
    )
    return conn.execute(stmt).first() is not None


def own_fulfilment(conn: Connection, order_id: int, payload: Mapping[str, Any]) -> bool:
    """Is this Shopify fulfillment (a `fulfillments/*` webhook body) one aoms made itself — by
    its id, or by a tracking number of a fulfilment push of the order not yet answered?"""
    p = t.shopify_pushes.c
    rows = conn.execute(
        select(p.payload, p.result).where(p.order_id == order_id, p.kind == FULFILMENT)
    ).all()
    if not rows:
        return False
    made = f"gid://shopify/Fulfillment/{payload.get('id')}"
    numbers = {str(n) for n in payload.get("tracking_numbers") or [] if n}
    if payload.get("tracking_number"):
        numbers.add(str(payload["tracking_number"]))
    for r in rows:
        if made in ((r.result or {}).get("fulfillments") or []):
            return True
        number = ((r.payload or {}).get("tracking") or {}).get("number")
        if number and number in numbers:
            return True
    return False
