"""A local Shopify GraphQL Admin API: a real HTTP server on a free localhost port.

It speaks Shopify's protocol as documented on shopify.dev (API 2026-10):
* `POST /admin/api/{version}/graphql.json` with `X-Shopify-Access-Token`; queries are parsed
  and validated against the schema in `shopify_admin.sdl.graphql` (graphql-core), so a query
  Shopify would refuse is refused here too;
* calculated query cost: an object costs 1, a scalar or enum 0, a connection 2 + `first` ×
  the cost of one node, a mutation 10; the requested cost must be in the bucket before the
  query runs and the difference to the actual cost (connections that returned fewer nodes,
  objects that were null) is refunded after it; a single query may cost at most 1,000;
* a leaky bucket per app and shop (`bucket` points, restored at `restore_rate` points/s);
  an empty bucket answers HTTP 200 with `errors[].extensions.code == "THROTTLED"`, no data,
  and `extensions.cost` with `actualQueryCost: null`;
* `inventorySetQuantities` with compare-and-set (`changeFromQuantity`, mandatory since
  2026-04), all or nothing, `CHANGE_FROM_QUANTITY_STALE` when the stored value differs;
  input lists of at most 250; `orders` with `updated_at` search and cursor paging;
  an order's `fulfillmentOrders` (assigned location, line items with remaining quantities)
  and `fulfillments`; `fulfillmentOrderMove`, `fulfillmentCreate` (one location a call),
  `tagsAdd` / `tagsRemove`, `fulfillmentOrderHold` / `ReleaseHold`, `refundCreate`,
  `returnCreate`, with the documented userErrors.

Orders are stored in the REST shape that webhooks carry and shown in the GraphQL shape.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_schema,
    execute,
    get_named_type,
    parse,
    validate,
    value_from_ast_untyped,
)

SDL = Path(__file__).with_name("shopify_admin.sdl.graphql")
MUTATION_COST = 10
MAX_QUERY_COST = 1000
MAX_INPUT_SIZE = 250
INVENTORY_REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_canceled",
        "movement_created",
        "movement_received",
        "movement_updated",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
FINANCIAL = {
    "pending",
    "authorized",
    "partially_paid",
    "partially_refunded",
    "voided",
    "paid",
    "refunded",
    "expired",
}


def gid(kind: str, number: int | str) -> str:
    return f"gid://shopify/{kind}/{number}"


def gid_number(value: str) -> int:
    return int(str(value).rsplit("/", 1)[-1].split("?")[0])


def _bag(amount: Any, currency: str) -> dict[str, Any]:
    money = {"amount": str(Decimal(str(amount or "0"))), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": money}


def _amount(obj: Mapping[str, Any], key: str) -> Any:
    if obj.get(key) is not None:
        return obj[key]
    return ((obj.get(f"{key}_set") or {}).get("shop_money") or {}).get("amount")


def _text(value: Any) -> str | None:
    """A property value as the String GraphQL carries (a structured value, as its text)."""
    return value if value is None or isinstance(value, str) else str(value)


def _utc(value: str | None) -> str | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def _connection(items: list[Any], first: int | None, after: str | None) -> dict[str, Any]:
    start = int(base64.b64decode(after).decode()) + 1 if after else 0
    page = items[start : start + (first or 250)]
    cursors = [base64.b64encode(str(start + i).encode()).decode() for i in range(len(page))]
    return {
        "nodes": page,
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, page, strict=True)],
        "pageInfo": {
            "hasNextPage": start + len(page) < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def graphql_order(rest: Mapping[str, Any]) -> dict[str, Any]:
    """A REST Order (a webhook body) as the GraphQL Admin API's Order object shows it."""
    cur = rest["currency"]
    lines = []
    for li in rest.get("line_items") or []:
        variant = li.get("variant_id")
        lines.append(
            {
                "id": gid("LineItem", li["id"]),
                "sku": li.get("sku") or None,
                "name": li.get("name") or li.get("title") or "",
                "title": li.get("title") or li.get("name") or "",
                "quantity": li["quantity"],
                "currentQuantity": li.get("current_quantity", li["quantity"]),
                "requiresShipping": bool(li.get("requires_shipping", True)),
                "variant": None
                if variant is None
                else {
                    "id": gid("ProductVariant", variant),
                    "legacyResourceId": str(variant),
                    "inventoryItem": {
                        "id": gid("InventoryItem", variant),
                        "sku": li.get("sku"),
                        "measurement": {"weight": {"unit": "GRAMS", "value": li.get("grams") or 0}},
                    },
                },
                "originalUnitPriceSet": _bag(_amount(li, "price"), cur),
                "totalDiscountSet": _bag(_amount(li, "total_discount"), cur),
                "discountAllocations": [
                    {"allocatedAmountSet": _bag(_amount(d, "amount"), cur)}
                    for d in li.get("discount_allocations") or []
                ],
                "taxLines": [
                    {
                        "priceSet": _bag(_amount(t, "price"), cur),
                        "rate": t.get("rate"),
                        "title": t.get("title") or "Tax",
                    }
                    for t in li.get("tax_lines") or []
                ],
                "customAttributes": [
                    {"key": str(p.get("name")), "value": _text(p.get("value"))}
                    for p in li.get("properties") or []
                ],
            }
        )
    shipping = [
        {
            "title": s.get("title") or "Shipping",
            "originalPriceSet": _bag(_amount(s, "price"), cur),
            "taxLines": [
                {
                    "priceSet": _bag(_amount(t, "price"), cur),
                    "rate": t.get("rate"),
                    "title": t.get("title") or "Tax",
                }
                for t in s.get("tax_lines") or []
            ],
        }
        for s in rest.get("shipping_lines") or []
    ]
    address = rest.get("shipping_address")
    status = rest.get("financial_status")
    tags = rest.get("tags") or ""
    return {
        "id": gid("Order", rest["id"]),
        "legacyResourceId": str(rest["id"]),
        "name": rest.get("name") or f"#{rest['id']}",
        "createdAt": _utc(rest["created_at"]),
        "updatedAt": _utc(rest.get("updated_at") or rest["created_at"]),
        "cancelledAt": _utc(rest.get("cancelled_at")),
        "currencyCode": cur,
        "displayFinancialStatus": status.upper() if status in FINANCIAL else None,
        "taxesIncluded": bool(rest.get("taxes_included")),
        "tags": [t.strip() for t in str(tags).split(",") if t.strip()],
        "totalPriceSet": _bag(_amount(rest, "total_price"), cur),
        "totalTaxSet": _bag(_amount(rest, "total_tax"), cur),
        "totalDiscountsSet": _bag(_amount(rest, "total_discounts"), cur),
        "shippingAddress": _graphql_address(address),
        "billingAddress": _graphql_address(rest.get("billing_address")),
        "email": rest.get("email"),
        "customer": None
        if not isinstance(rest.get("customer"), dict) or rest["customer"].get("id") is None
        else {
            "id": gid("Customer", rest["customer"]["id"]),
            "legacyResourceId": str(rest["customer"]["id"]),
        },
        "lineItems": lambda _info, first=None, after=None: _connection(lines, first, after),
        "shippingLines": lambda _info, first=None, after=None: _connection(shipping, first, after),
    }


def _graphql_address(address: Any) -> dict[str, Any] | None:
    if not address:
        return None
    return {
        "address1": address.get("address1"),
        "city": address.get("city"),
        "countryCodeV2": address.get("country_code"),
        "provinceCode": address.get("province_code"),
        "zip": address.get("zip"),
        "name": address.get("name"),
        "latitude": address.get("latitude"),
        "longitude": address.get("longitude"),
    }


@dataclass
class FulfillmentOrderState:
    id: str
    order_id: int
    lines: dict[str, tuple[str, int]]  # fulfillment order line item id -> (line item gid, left)
    location: str | None = None  # the assigned location's gid
    holds: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    totals: dict[str, int] = field(default_factory=dict)  # line id -> total quantity

    def __post_init__(self) -> None:
        for line_id, (_, left) in self.lines.items():
            self.totals.setdefault(line_id, left)

    def status(self) -> str:
        if self.closed:
            return "CLOSED"
        if self.holds:
            return "ON_HOLD"
        return "IN_PROGRESS" if self.fulfilled() else "OPEN"

    def fulfilled(self) -> bool:
        return any(self.totals[k] > left for k, (_, left) in self.lines.items())


@dataclass
class Stats:
    requests: int = 0
    throttled: int = 0
    points_requested: int = 0
    points_spent: int = 0
    mutations: dict[str, int] = field(default_factory=dict)


class FakeShopifyAdmin:
    """The fake store. `start()` serves it on 127.0.0.1 and returns the base URL."""

    def __init__(
        self,
        *,
        shop: str = "shop.myshopify.com",
        token: str = "shpat_test_token",
        api_version: str = "2026-10",
        restore_rate: float = 100.0,
        bucket: float = 1000.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.schema = build_schema(SDL.read_text())  # its own: resolvers are bound to it
        self.shop, self.token, self.api_version = shop, token, api_version
        self.restore_rate, self.bucket = restore_rate, bucket
        self.clock = clock
        self._available, self._at = bucket, clock()
        self.lock = threading.Lock()
        self.stats = Stats()
        self.levels: dict[tuple[str, str], int] = {}  # (item gid, location gid) -> available
        self.locations: dict[str, str] = {}
        self.items: set[str] = set()
        self.orders: dict[int, dict[str, Any]] = {}
        self.fulfillment_orders: dict[str, FulfillmentOrderState] = {}
        self.fulfillments: list[dict[str, Any]] = []
        self.fulfillment_lines: dict[str, dict[str, Any]] = {}  # id -> line item, qty, returned
        self.refunds: list[dict[str, Any]] = []
        self.returns: list[dict[str, Any]] = []
        self.answer_429: int = 0  # answer the next N requests with HTTP 429 and Retry-After
        self._ids = iter(range(10_000_001, 10**12))
        self._server: ThreadingHTTPServer | None = None
        self.base_url = ""  # set by start()
        # A query text is parsed and validated once (Shopify, too, caches query plans).
        self._documents: dict[str, tuple[Any, list[Any]]] = {}
        self._wire_resolvers()

    # -- what a test arranges ------------------------------------------------------------

    def stock(self, item_gid: str, location_gid: str, available: int) -> None:
        with self.lock:
            self.locations.setdefault(location_gid, location_gid.rsplit("/", 1)[-1])
            self.levels[(item_gid, location_gid)] = available
            self.items.add(item_gid)

    def put_order(self, rest: Mapping[str, Any]) -> None:
        """Store (or replace) an order as Shopify holds it: what webhooks would have carried."""
        with self.lock:
            self.orders[int(rest["id"])] = dict(rest)

    def add_fulfillment_order(
        self, order_id: int, line_items: Mapping[int, int], location_gid: str | None = None
    ) -> str:
        """A fulfillment order over the order's line items (line item id -> quantity), assigned
        to `location_gid`, as Shopify makes when the order is created."""
        with self.lock:
            fo = FulfillmentOrderState(
                gid("FulfillmentOrder", next(self._ids)),
                order_id,
                {
                    gid("FulfillmentOrderLineItem", next(self._ids)): (gid("LineItem", li), q)
                    for li, q in line_items.items()
                },
                location_gid,
            )
            self.fulfillment_orders[fo.id] = fo
            return fo.id

    def drain(self, points: float) -> None:
        """Spend points from the bucket as another caller of the same app would."""
        with self.lock:
            self._refill()
            self._available = max(0.0, self._available - points)

    def available_points(self) -> float:
        with self.lock:
            self._refill()
            return self._available

    # -- the server ----------------------------------------------------------------------

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, headers, payload = fake.handle(
                    self.path, self.headers.get("X-Shopify-Access-Token"), body
                )
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @contextmanager
    def running(self) -> Iterator[str]:
        url = self.start()
        try:
            yield url
        finally:
            self.stop()

    # -- one request ---------------------------------------------------------------------

    def _refill(self) -> None:
        now = self.clock()
        self._available = min(self.bucket, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def _throttle_status(self) -> dict[str, float]:
        return {
            "maximumAvailable": float(self.bucket),
            "currentlyAvailable": float(int(self._available)),
            "restoreRate": float(self.restore_rate),
        }

    def handle(
        self, path: str, token: str | None, body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if path != f"/admin/api/{self.api_version}/graphql.json":
            return 404, {}, {"errors": "Not Found"}
        if token != self.token:
            return (
                401,
                {},
                {
                    "errors": "[API] Invalid API key or access token (unrecognized login or wrong "
                    "password)"
                },
            )
        try:
            request = json.loads(body)
            source, variables = request["query"], request.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return 400, {}, {"errors": {"query": "Required parameter missing or invalid"}}
        with self.lock:
            self.stats.requests += 1
            if self.answer_429:
                self.answer_429 -= 1
                self.stats.throttled += 1
                return (
                    429,
                    {"Retry-After": "1.0"},
                    {"errors": "Exceeded 2 calls per second for api client."},
                )
            return 200, {}, self._run(source, variables)

    def _run(self, source: str, variables: dict[str, Any]) -> dict[str, Any]:
        checked = self._documents.get(source)
        if checked is None:
            try:
                document = parse(source)
            except GraphQLError as exc:
                return {"errors": [exc.formatted]}
            problems = [p.formatted for p in validate(self.schema, document)]
            checked = self._documents[source] = (document, problems)
        document, problems = checked
        if problems:
            return {"errors": problems}
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        mutation = operation.operation is OperationType.MUTATION
        root = self.schema.mutation_type if mutation else self.schema.query_type
        assert root is not None
        requested = self._cost(operation.selection_set, root, None, variables, fragments, mutation)
        self._refill()
        if requested > MAX_QUERY_COST:
            return {
                "errors": [
                    {
                        "message": f"Query cost is {requested}, which exceeds the single query "
                        f"max cost limit ({MAX_QUERY_COST}).",
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": MAX_QUERY_COST,
                        },
                    }
                ]
            }
        if requested > self._available:
            self.stats.throttled += 1
            return {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": {
                    "cost": {
                        "requestedQueryCost": requested,
                        "actualQueryCost": None,
                        "throttleStatus": self._throttle_status(),
                    }
                },
            }
        self._available -= requested
        result = execute(self.schema, document, root_value={}, variable_values=variables)
        data = result.data
        actual = self._cost(
            operation.selection_set, root, data or {}, variables, fragments, mutation
        )
        actual = min(actual, requested)
        self._available = min(self.bucket, self._available + requested - actual)
        self.stats.points_requested += requested
        self.stats.points_spent += actual
        answer: dict[str, Any] = {"data": data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        answer["extensions"] = {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": self._throttle_status(),
            }
        }
        return answer

    def _cost(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLObjectType,
        data: Any,
        variables: dict[str, Any],
        fragments: dict[str, FragmentDefinitionNode],
        mutation_root: bool = False,
    ) -> int:
        """Requested cost when `data` is None, else the actual cost of what `data` returned."""
        if selection_set is None:
            return 0
        total = 0
        for sel in selection_set.selections:
            if isinstance(sel, InlineFragmentNode | FragmentSpreadNode):
                sub = sel if isinstance(sel, InlineFragmentNode) else fragments[sel.name.value]
                cond = sub.type_condition
                target = self.schema.get_type(cond.name.value) if cond else parent
                if isinstance(target, GraphQLObjectType):
                    total += self._cost(sub.selection_set, target, data, variables, fragments)
                continue
            assert isinstance(sel, FieldNode)
            name = sel.name.value
            if name.startswith("__"):
                continue
            if mutation_root:
                total += MUTATION_COST
                continue
            field_type = parent.fields[name].type
            named = get_named_type(field_type)
            if not isinstance(named, GraphQLObjectType):
                continue  # scalars and enums cost nothing (no interface is selected here)
            key = sel.alias.value if sel.alias else name
            value = data.get(key) if isinstance(data, dict) else None
            if data is not None and value is None:
                continue  # a null object costs nothing in the actual cost
            if named.name.endswith("Connection"):
                total += self._connection_cost(sel, named, value, variables, fragments)
                continue
            unwrapped = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
            if isinstance(unwrapped, GraphQLList) and isinstance(value, list):
                total += sum(
                    1 + self._cost(sel.selection_set, named, v, variables, fragments) for v in value
                )
                continue
            total += 1 + self._cost(sel.selection_set, named, value, variables, fragments)
        return total

    def _connection_cost(
        self,
        sel: FieldNode,
        connection: GraphQLObjectType,
        value: Any,
        variables: dict[str, Any],
        fragments: dict[str, FragmentDefinitionNode],
    ) -> int:
        """2 + each node's cost: `first` nodes when requested, the nodes returned when actual."""
        node_type = get_named_type(connection.fields["nodes"].type)
        assert isinstance(node_type, GraphQLObjectType)
        args = {a.name.value: value_from_ast_untyped(a.value, variables) for a in sel.arguments}
        size = int(args.get("first") or args.get("last") or 0)
        node_sets = []  # (selection set, key path to the nodes)
        for s in sel.selection_set.selections if sel.selection_set else []:
            if not isinstance(s, FieldNode):
                continue
            if s.name.value == "nodes":
                node_sets.append((s.selection_set, (s.alias or s.name).value, None))
            if s.name.value == "edges" and s.selection_set:
                for inner in s.selection_set.selections:
                    if isinstance(inner, FieldNode) and inner.name.value == "node":
                        node_sets.append(
                            (
                                inner.selection_set,
                                (s.alias or s.name).value,
                                (inner.alias or inner.name).value,
                            )
                        )
        total = 2
        for selection, key, node_key in node_sets:
            if value is None:
                total += size * (1 + self._cost(selection, node_type, None, variables, fragments))
                continue
            for item in value.get(key) or []:
                node = item.get(node_key) if node_key else item
                total += 1 + self._cost(selection, node_type, node, variables, fragments)
        return total

    # -- resolvers -----------------------------------------------------------------------

    def _wire_resolvers(self) -> None:
        query, mutation = self.schema.query_type, self.schema.mutation_type
        assert query is not None and mutation is not None
        resolvers: dict[str, Callable[..., Any]] = {
            "orders": self._orders,
            "order": lambda _root, _info, id: self._order_node(id),
            "inventoryItem": self._inventory_item,
            "fulfillmentOrder": lambda _root, _info, id: self._fo_node(id),
            "returnableFulfillments": self._returnable,
        }
        for name, fn in resolvers.items():
            query.fields[name].resolve = fn
        mutations: dict[str, Callable[..., Any]] = {
            "inventorySetQuantities": self._inventory_set_quantities,
            "fulfillmentCreate": self._fulfillment_create,
            "tagsAdd": self._tags_add,
            "tagsRemove": self._tags_remove,
            "fulfillmentOrderMove": self._move,
            "fulfillmentOrderHold": self._hold,
            "fulfillmentOrderReleaseHold": self._release_hold,
            "refundCreate": self._refund_create,
            "returnCreate": self._return_create,
        }
        for name, fn in mutations.items():
            mutation.fields[name].resolve = fn
        node = self.schema.get_type("Node")
        node.resolve_type = lambda value, _info, _type: value["__typename"]  # type: ignore[union-attr]

    def _orders(
        self,
        _root: Any,
        _info: Any,
        first: int | None = None,
        after: str | None = None,
        query: str | None = None,
        sortKey: str | None = None,
        reverse: bool = False,
        **_: Any,
    ) -> dict[str, Any]:
        if first is None or not 1 <= first <= 250:
            raise GraphQLError(
                "you must provide one of first or last, at most 250",
                extensions={"code": "BAD_REQUEST"},
            )
        rows = [graphql_order(o) for o in self.orders.values()]
        for clause in re.findall(r"updated_at:(>=|<=|>|<)'?([^'\s]+)'?", query or ""):
            op, value = clause
            bound = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if bound.tzinfo is None:
                bound = bound.replace(tzinfo=UTC)

            def keep(o: dict[str, Any], op: str = op, bound: datetime = bound) -> bool:
                at = datetime.fromisoformat(o["updatedAt"].replace("Z", "+00:00"))
                return {">": at > bound, ">=": at >= bound, "<": at < bound, "<=": at <= bound}[op]

            rows = [o for o in rows if keep(o)]
        key = {"UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt"}.get(sortKey or "ID")
        rows.sort(
            key=lambda o: (o[key] if key else "", int(o["legacyResourceId"])), reverse=bool(reverse)
        )
        return _connection(rows, first, after)

    def _order_node(self, order_gid: str) -> dict[str, Any] | None:
        number = gid_number(order_gid)
        rest = self.orders.get(number)
        if rest is None:
            return None
        fos = [
            self._fo_node(fo.id) for fo in self.fulfillment_orders.values() if fo.order_id == number
        ]
        done = [f for f in self.fulfillments if f["order_id"] == number]
        return {
            **graphql_order(rest),
            "fulfillmentOrders": lambda _i, first=None, after=None: _connection(fos, first, after),
            "fulfillments": lambda _i, first=None: done[:first] if first else done,
            "__typename": "Order",
        }

    def _fo_node(self, fo_gid: str) -> dict[str, Any] | None:
        fo = self.fulfillment_orders.get(fo_gid)
        if fo is None:
            return None
        lines = [
            {"id": k, "remainingQuantity": left, "totalQuantity": fo.totals[k],
             "sku": None, "lineItem": {"id": line_gid}}
            for k, (line_gid, left) in fo.lines.items()
        ]  # fmt: skip
        where = fo.location
        return {
            "id": fo.id,
            "status": fo.status(),
            "fulfillmentHolds": list(fo.holds),
            "assignedLocation": {
                "name": self.locations.get(where, "") if where else "",
                "location": None if where is None else {"id": where, "name": ""},
            },
            "lineItems": lambda _i, first=None, after=None: _connection(lines, first, after),
            "__typename": "FulfillmentOrder",
        }

    def _returnable(
        self, _root: Any, _info: Any, orderId: str, first: int | None = None,
        after: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """The order's fulfillments with units still returnable (fulfilled − returned)."""
        number = gid_number(orderId)
        nodes = []
        for f in self.fulfillments:
            if f["order_id"] != number:
                continue
            items = [
                {"quantity": self.fulfillment_lines[ln["id"]]["quantity"]
                 - self.fulfillment_lines[ln["id"]]["returned"],
                 "fulfillmentLineItem": {"id": ln["id"], "quantity": ln["quantity"],
                                         "lineItem": ln["lineItem"]}}
                for ln in f["lines"]
            ]  # fmt: skip
            items = [i for i in items if i["quantity"] > 0]
            if items:
                nodes.append({
                    "id": f["id"].replace("Fulfillment/", "ReturnableFulfillment/"),
                    "fulfillment": f,
                    "returnableFulfillmentLineItems":
                        lambda _i, first=None, after=None, items=items: _connection(
                            items, first, after),
                })  # fmt: skip
        return _connection(nodes, first, after)

    def _inventory_item(self, _root: Any, _info: Any, id: str) -> dict[str, Any] | None:
        if id not in self.items:
            return None

        def level(_info: Any, locationId: str) -> dict[str, Any] | None:
            if (id, locationId) not in self.levels:
                return None
            return {
                "id": f"gid://shopify/InventoryLevel/{gid_number(locationId)}"
                f"?inventory_item_id={gid_number(id)}",
                "location": {"id": locationId, "name": self.locations.get(locationId, "")},
                "quantities": lambda _i, names: [
                    {"name": n, "quantity": self.levels[(id, locationId)], "updatedAt": None}
                    for n in names
                    if n == "available"
                ],
            }

        return {"id": id, "sku": None, "measurement": {"weight": None}, "inventoryLevel": level}

    def _inventory_set_quantities(
        self, _root: Any, _info: Any, input: dict[str, Any]
    ) -> dict[str, Any]:
        self.stats.mutations["inventorySetQuantities"] = (
            self.stats.mutations.get("inventorySetQuantities", 0) + 1
        )
        quantities = input["quantities"]
        if len(quantities) > MAX_INPUT_SIZE:
            raise GraphQLError(
                f"The input array size of {len(quantities)} is greater than the maximum allowed "
                f"of {MAX_INPUT_SIZE}.",
                extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"},
            )
        errors: list[dict[str, Any]] = []

        def error(i: int, key: str, code: str, message: str) -> None:
            errors.append(
                {"code": code, "field": ["input", "quantities", str(i), key], "message": message}
            )

        if input["name"] not in ("available", "on_hand"):
            errors.append(
                {
                    "code": "INVALID_NAME",
                    "field": ["input", "name"],
                    "message": "The quantity name must be either 'available' or 'on_hand'.",
                }
            )
        if input["reason"] not in INVENTORY_REASONS:
            errors.append(
                {
                    "code": "INVALID_REASON",
                    "field": ["input", "reason"],
                    "message": "The specified reason is invalid.",
                }
            )
        seen: set[tuple[str, str]] = set()
        for i, q in enumerate(quantities):
            pair = (q["inventoryItemId"], q["locationId"])
            if pair in seen:
                error(
                    i,
                    "inventoryItemId",
                    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                    "The combination of inventoryItemId and locationId must be unique.",
                )
            seen.add(pair)
            if pair[0] not in self.items:
                error(
                    i,
                    "inventoryItemId",
                    "INVALID_INVENTORY_ITEM",
                    "The specified inventory item could not be found.",
                )
            elif pair[1] not in self.locations:
                error(
                    i,
                    "locationId",
                    "INVALID_LOCATION",
                    "The specified location could not be found.",
                )
            elif pair not in self.levels:
                error(
                    i,
                    "locationId",
                    "ITEM_NOT_STOCKED_AT_LOCATION",
                    "The specified inventory item is not stocked at the location.",
                )
            if q["quantity"] < 0:
                error(i, "quantity", "INVALID_QUANTITY_NEGATIVE", "The quantity can't be negative.")
            elif q["quantity"] > 1_000_000_000:
                error(
                    i,
                    "quantity",
                    "INVALID_QUANTITY_TOO_HIGH",
                    "The total quantity can't be higher than 1,000,000,000.",
                )
            if "changeFromQuantity" not in q:
                error(
                    i,
                    "changeFromQuantity",
                    "COMPARE_QUANTITY_REQUIRED",
                    "changeFromQuantity must be given to each quantity (null opts out).",
                )
            elif (
                q["changeFromQuantity"] is not None
                and pair in self.levels
                and self.levels[pair] != q["changeFromQuantity"]
            ):
                error(
                    i,
                    "changeFromQuantity",
                    "CHANGE_FROM_QUANTITY_STALE",
                    "The changeFromQuantity value does not match persisted value.",
                )
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}  # nothing applied
        changes = []
        for q in quantities:
            pair = (q["inventoryItemId"], q["locationId"])
            before = self.levels[pair]
            self.levels[pair] = q["quantity"]
            changes.append(
                {
                    "name": input["name"],
                    "delta": q["quantity"] - before,
                    "quantityAfterChange": None,
                    "item": {"id": pair[0]},
                    "location": {"id": pair[1], "name": ""},
                }
            )
        return {
            "inventoryAdjustmentGroup": {
                "id": gid("InventoryAdjustmentGroup", next(self._ids)),
                "createdAt": _utc(datetime.now(UTC).isoformat()),
                "reason": input["reason"],
                "referenceDocumentUri": input.get("referenceDocumentUri"),
                "changes": lambda _i, quantityNames=None: [
                    c for c in changes if quantityNames is None or c["name"] in quantityNames
                ],
            },
            "userErrors": [],
        }

    def _fulfillment_create(
        self, _root: Any, _info: Any, fulfillment: dict[str, Any], message: str | None = None
    ) -> dict[str, Any]:
        groups = fulfillment["lineItemsByFulfillmentOrder"]
        errors: list[dict[str, Any]] = []
        taken: list[tuple[FulfillmentOrderState, str, int]] = []
        for gi, group in enumerate(groups):
            fo = self.fulfillment_orders.get(group["fulfillmentOrderId"])
            path = ["fulfillment", "lineItemsByFulfillmentOrder", str(gi)]
            if fo is None:
                errors.append(
                    {
                        "field": [*path, "fulfillmentOrderId"],
                        "message": "Fulfillment order does not exist.",
                    }
                )
                continue
            if fo.holds:
                errors.append(
                    {
                        "field": [*path, "fulfillmentOrderId"],
                        "message": "Fulfillment order is on hold.",
                    }
                )
                continue
            if fo.closed:
                errors.append(
                    {
                        "field": [*path, "fulfillmentOrderId"],
                        "message": "Fulfillment order is already closed.",
                    }
                )
                continue
            wanted = group.get("fulfillmentOrderLineItems") or [
                {"id": k, "quantity": v[1]} for k, v in fo.lines.items() if v[1] > 0
            ]
            for li in wanted:
                line = fo.lines.get(li["id"])
                if line is None or not 0 < li["quantity"] <= line[1]:
                    errors.append(
                        {
                            "field": [*path, "fulfillmentOrderLineItems"],
                            "message": "Invalid fulfillment order line item quantity requested.",
                        }
                    )
                else:
                    taken.append((fo, li["id"], li["quantity"]))
        if not errors and len({fo.location for fo, _, _ in taken}) > 1:
            errors.append(
                {
                    "field": ["fulfillment", "lineItemsByFulfillmentOrder"],
                    "message": "All fulfillment orders must be assigned to the same location.",
                }
            )
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        lines = []
        for fo, li_id, qty in taken:
            line_gid, left = fo.lines[li_id]
            fo.lines[li_id] = (line_gid, left - qty)
            if all(q == 0 for _, q in fo.lines.values()):
                fo.closed = True
            fl_id = gid("FulfillmentLineItem", next(self._ids))
            self.fulfillment_lines[fl_id] = {
                "line_item": line_gid,
                "quantity": qty,
                "returned": 0,
                "order_id": fo.order_id,
            }
            lines.append({"id": fl_id, "quantity": qty, "lineItem": {"id": line_gid}})
        tracking = fulfillment.get("trackingInfo") or {}
        numbers = tracking.get("numbers") or (
            [tracking["number"]] if tracking.get("number") else []
        )
        urls = tracking.get("urls") or ([tracking["url"]] if tracking.get("url") else [])
        info = [
            {
                "company": tracking.get("company"),
                "number": n,
                "url": urls[i] if i < len(urls) else None,
            }
            for i, n in enumerate(numbers)
        ]
        created = {
            "id": gid("Fulfillment", next(self._ids)),
            "status": "SUCCESS",
            "trackingInfo": lambda _i, first=None: info,
            "fulfillmentLineItems": lambda _i, first=None: _connection(lines, first, None),
            "notifyCustomer": bool(fulfillment.get("notifyCustomer")),
            "tracking": info,
            "lines": lines,
            "order_id": taken[0][0].order_id if taken else None,
            "location": taken[0][0].location if taken else None,
        }
        self.fulfillments.append(created)
        return {"fulfillment": created, "userErrors": []}

    def _tags_add(self, _root: Any, _info: Any, id: str, tags: list[str]) -> dict[str, Any]:
        return self._retag(id, lambda have: have + [t for t in tags if t not in have])

    def _tags_remove(self, _root: Any, _info: Any, id: str, tags: list[str]) -> dict[str, Any]:
        return self._retag(id, lambda have: [t for t in have if t not in tags])

    def _retag(self, id: str, change: Callable[[list[str]], list[str]]) -> dict[str, Any]:
        number = gid_number(id) if id.startswith("gid://shopify/Order/") else None
        if number is None or number not in self.orders:
            return {
                "node": None,
                "userErrors": [{"field": ["id"], "message": "Resource not found"}],
            }
        order = self.orders[number]
        have = [t.strip() for t in str(order.get("tags") or "").split(",") if t.strip()]
        order["tags"] = ", ".join(change(have))
        order["updated_at"] = datetime.now(UTC).isoformat()
        return {"node": {"id": id, "__typename": "Order"}, "userErrors": []}

    def _move(
        self,
        _root: Any,
        _info: Any,
        id: str,
        newLocationId: str,
        fulfillmentOrderLineItems: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Re-assign unfulfilled line items to another location (shopify.dev,
        fulfillmentOrderMove): all of an untouched fulfillment order moves it; a part, or any
        of one that was partly fulfilled, goes to a new fulfillment order at that location."""
        fo = self.fulfillment_orders.get(id)

        def error(message: str, code: str = "INVALID") -> dict[str, Any]:
            failed = {"code": code, "field": ["id"], "message": message}
            return {"movedFulfillmentOrder": None, "originalFulfillmentOrder": None,
                    "remainingFulfillmentOrder": None, "userErrors": [failed]}  # fmt: skip

        if fo is None:
            return error("Fulfillment order does not exist.", "NOT_FOUND")
        if fo.closed:
            return error("Fulfillment order is closed.")
        if newLocationId not in self.locations:
            return error("Location not found.", "NOT_FOUND")
        wanted = {li["id"]: li["quantity"] for li in fulfillmentOrderLineItems or []} or {
            k: left for k, (_, left) in fo.lines.items() if left > 0
        }
        for line_id, qty in wanted.items():
            if line_id not in fo.lines or not 0 < qty <= fo.lines[line_id][1]:
                return error("Invalid fulfillment order line item quantity requested.")
        everything = all(wanted.get(k, 0) == left for k, (_, left) in fo.lines.items())
        if everything and not fo.fulfilled():
            fo.location = newLocationId
            moved = fo
        else:
            moved = FulfillmentOrderState(
                gid("FulfillmentOrder", next(self._ids)),
                fo.order_id,
                {
                    gid("FulfillmentOrderLineItem", next(self._ids)): (fo.lines[k][0], q)
                    for k, q in wanted.items()
                },
                newLocationId,
            )
            self.fulfillment_orders[moved.id] = moved
            for k, q in wanted.items():
                line_gid, left = fo.lines[k]
                fo.lines[k] = (line_gid, left - q)
                fo.totals[k] -= q
            if all(left == 0 for _, left in fo.lines.values()):
                fo.closed = True
        return {
            "movedFulfillmentOrder": self._fo_node(moved.id),
            "originalFulfillmentOrder": self._fo_node(fo.id),
            "remainingFulfillmentOrder": None,
            "userErrors": [],
        }

    def _hold(
        self, _root: Any, _info: Any, id: str, fulfillmentHold: dict[str, Any]
    ) -> dict[str, Any]:
        fo = self.fulfillment_orders.get(id)
        if fo is None:
            return {
                "fulfillmentHold": None,
                "fulfillmentOrder": None,
                "remainingFulfillmentOrder": None,
                "userErrors": [
                    {
                        "code": "FULFILLMENT_ORDER_NOT_FOUND",
                        "field": ["id"],
                        "message": "Fulfillment order not found.",
                    }
                ],
            }
        handle = fulfillmentHold.get("handle") or ""
        if any(h["handle"] == handle for h in fo.holds):
            return {
                "fulfillmentHold": None,
                "fulfillmentOrder": self._fo_node(id),
                "remainingFulfillmentOrder": None,
                "userErrors": [
                    {
                        "code": "DUPLICATE_FULFILLMENT_HOLD_HANDLES",
                        "field": ["fulfillmentHold", "handle"],
                        "message": "The handle provided for the fulfillment hold is "
                        "already in use by this app for another hold on this "
                        "fulfillment order.",
                    }
                ],
            }
        hold = {
            "id": gid("FulfillmentHold", next(self._ids)),
            "handle": handle,
            "reason": fulfillmentHold["reason"],
            "reasonNotes": fulfillmentHold.get("reasonNotes"),
            "heldByRequestingApp": True,
            "externalId": fulfillmentHold.get("externalId"),
        }
        fo.holds.append(hold)
        return {
            "fulfillmentHold": hold,
            "fulfillmentOrder": self._fo_node(id),
            "remainingFulfillmentOrder": None,
            "userErrors": [],
        }

    def _release_hold(
        self,
        _root: Any,
        _info: Any,
        id: str,
        holdIds: list[str] | None = None,
        externalId: str | None = None,
    ) -> dict[str, Any]:
        fo = self.fulfillment_orders.get(id)
        if fo is None:
            return {
                "fulfillmentOrder": None,
                "userErrors": [
                    {
                        "code": "FULFILLMENT_ORDER_NOT_FOUND",
                        "field": ["id"],
                        "message": "Fulfillment order not found.",
                    }
                ],
            }
        fo.holds = [h for h in fo.holds if holdIds is not None and h["id"] not in holdIds]
        return {"fulfillmentOrder": self._fo_node(id), "userErrors": []}

    def _refund_create(self, _root: Any, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        number = gid_number(input["orderId"])
        order = self.orders.get(number)
        if order is None:
            return {
                "refund": None,
                "order": None,
                "userErrors": [{"field": ["orderId"], "message": "Order does not exist"}],
            }
        lines = {gid("LineItem", li["id"]): li for li in order.get("line_items") or []}
        refunded: dict[str, int] = {}
        for r in self.refunds:
            if r["order_id"] == number:
                for li in r["lines"]:
                    refunded[li["lineItemId"]] = refunded.get(li["lineItemId"], 0) + li["quantity"]
        errors = []
        for i, li in enumerate(input.get("refundLineItems") or []):
            line = lines.get(li["lineItemId"])
            left = (line["quantity"] - refunded.get(li["lineItemId"], 0)) if line else 0
            if line is None:
                errors.append(
                    {
                        "field": ["refundLineItems", str(i), "lineItemId"],
                        "message": "Line item does not exist",
                    }
                )
            elif not 0 < li["quantity"] <= left:
                errors.append(
                    {
                        "field": ["refundLineItems", str(i), "quantity"],
                        "message": "Quantity cannot refund more items than were purchased",
                    }
                )
        if errors:
            return {"refund": None, "order": None, "userErrors": errors}
        total = sum((Decimal(t["amount"]) for t in input.get("transactions") or []), Decimal(0))
        refund = {
            "id": gid("Refund", next(self._ids)),
            "note": input.get("note"),
            "createdAt": _utc(datetime.now(UTC).isoformat()),
            "totalRefundedSet": _bag(total, order["currency"]),
            "order_id": number,
            "lines": list(input.get("refundLineItems") or []),
            "transactions": list(input.get("transactions") or []),
            "shipping": input.get("shipping"),
        }
        self.refunds.append(refund)
        return {"refund": refund, "order": self._order_node(input["orderId"]), "userErrors": []}

    def _return_create(self, _root: Any, _info: Any, returnInput: dict[str, Any]) -> dict[str, Any]:
        number = gid_number(returnInput["orderId"])
        if number not in self.orders:
            return {
                "return": None,
                "userErrors": [
                    {"code": "NOT_FOUND", "field": ["orderId"], "message": "Order does not exist."}
                ],
            }
        errors = []
        for i, li in enumerate(returnInput["returnLineItems"]):
            fl = self.fulfillment_lines.get(li["fulfillmentLineItemId"])
            path = ["returnInput", "returnLineItems", str(i)]
            if fl is None or fl["order_id"] != number:
                errors.append(
                    {
                        "code": "NOT_FOUND",
                        "field": [*path, "fulfillmentLineItemId"],
                        "message": "Fulfillment line item does not exist.",
                    }
                )
            elif not 0 < li["quantity"] <= fl["quantity"] - fl["returned"]:
                errors.append(
                    {
                        "code": "LESS_THAN_OR_EQUAL_TO",
                        "field": [*path, "quantity"],
                        "message": "Quantity must be less than or equal to the "
                        "returnable quantity.",
                    }
                )
        if errors:
            return {"return": None, "userErrors": errors}
        for li in returnInput["returnLineItems"]:
            self.fulfillment_lines[li["fulfillmentLineItemId"]]["returned"] += li["quantity"]
        created = {
            "id": gid("Return", next(self._ids)),
            "name": f"{self.orders[number].get('name', '#')}-R{len(self.returns) + 1}",
            "status": "OPEN",
            "order_id": number,
            "lines": list(returnInput["returnLineItems"]),
        }
        self.returns.append(created)
        return {"return": created, "userErrors": []}
