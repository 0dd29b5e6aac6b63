"""A Shopify GraphQL Admin API client that obeys the cost-based rate limit.

Every call goes to `POST https://{shop}/admin/api/{version}/graphql.json` with the shop's
access token. Before a call the client waits until its model of the shop's cost bucket
(`pacing.CostBucket`, fed by each answer's `extensions.cost.throttleStatus`) holds the
call's requested cost, so normal work is never throttled. If Shopify throttles anyway
(another app of the same key spent the bucket: HTTP 200 with `THROTTLED`, or HTTP 429), the
client waits the time the answer implies and sends the same call again. 5xx answers and
network errors are retried with back-off. A mutation's `userErrors` are returned to the
caller, never retried here: only the caller knows what they mean.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from aoms.adapters.shopify.pacing import CostBucket, ThrottleStatus
from aoms.domain.errors import ShopifyError, ShopifyUnavailable, ShopifyUserErrors
from aoms.services.shopify_sync import Change, SetOutcome

log = logging.getLogger(__name__)

API_VERSION = "2026-10"
MAX_INPUT_SIZE = 250  # Shopify's limit on any input list (quantities per inventorySetQuantities)
MUTATION_COST = 10
MAX_THROTTLES = 50  # throttled answers to one call before giving up (another app hogs it)
READS_PER_QUERY = 50  # inventory levels read back per query (3 points each)


@dataclass
class ClientStats:
    requests: int = 0
    throttled: int = 0  # THROTTLED answers and 429s received
    retried_errors: int = 0  # 5xx and network errors retried
    points_requested: int = 0
    points_spent: int = 0
    waited_seconds: float = 0.0  # pacing waits before a call
    backoff_seconds: float = 0.0  # waits after a throttle or an error


@dataclass(frozen=True, slots=True)
class Tracking:
    number: str | None = None
    company: str | None = None
    url: str | None = None


ORDER_FIELDS = """
id legacyResourceId name createdAt updatedAt cancelledAt currencyCode displayFinancialStatus
taxesIncluded tags email
customer { legacyResourceId }
billingAddress { address1 city countryCodeV2 provinceCode zip name latitude longitude }
totalPriceSet { shopMoney { amount } }
totalTaxSet { shopMoney { amount } }
totalDiscountsSet { shopMoney { amount } }
shippingAddress { address1 city countryCodeV2 provinceCode zip name latitude longitude }
lineItems(first: 10) {
  nodes {
    id sku name quantity currentQuantity requiresShipping
    variant { legacyResourceId inventoryItem { measurement { weight { unit value } } } }
    originalUnitPriceSet { shopMoney { amount } }
    totalDiscountSet { shopMoney { amount } }
    discountAllocations { allocatedAmountSet { shopMoney { amount } } }
    taxLines { priceSet { shopMoney { amount } } }
    customAttributes { key value }
  }
  pageInfo { hasNextPage endCursor }
}
shippingLines(first: 2) {
  nodes { title originalPriceSet { shopMoney { amount } }
          taxLines { priceSet { shopMoney { amount } } } }
}
"""

ORDERS_QUERY = (
    "query Orders($first: Int!, $after: String, $query: String) {\n"
    "  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {\n"
    "    nodes {" + ORDER_FIELDS + "}\n"
    "    pageInfo { hasNextPage endCursor }\n  }\n}"
)
# Requested cost: a line item costs 16 points, an order without its lines 24, so a page of
# 5 orders × 10 lines requests 2 + 5 × (24 + 2 + 10 × 16) = 932 of the 1,000 a query may;
# the points for lines an order does not have are refunded. Lines past the first 10 are
# fetched 50 at a time (803 points).
ORDERS_PER_PAGE = 5
ORDER_COST = 186
LINE_FIELDS = ORDER_FIELDS[
    ORDER_FIELDS.index("lineItems(first: 10) {") : ORDER_FIELDS.index("shippingLines")
]
MORE_LINES_QUERY = (
    "query MoreLines($id: ID!, $after: String) {\n  order(id: $id) {\n"
    + LINE_FIELDS.replace("lineItems(first: 10)", "lineItems(first: 50, after: $after)")
    + "  }\n}"
)

SET_QUANTITIES = """
mutation SetAvailable($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id }
    userErrors { code field message }
  }
}"""

FULFILLMENT_CREATE = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo { company number url }
                  fulfillmentLineItems(first: 50) { nodes { id quantity lineItem { id } } } }
    userErrors { field message }
  }
}"""

TAGS_ADD = """
mutation TagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}"""

HOLD = """
mutation Hold($id: ID!, $hold: FulfillmentOrderHoldInput!) {
  fulfillmentOrderHold(id: $id, fulfillmentHold: $hold) {
    fulfillmentHold { id handle reason }
    fulfillmentOrder { id status }
    userErrors { code field message }
  }
}"""

RELEASE_HOLD = """
mutation ReleaseHold($id: ID!, $holdIds: [ID!], $externalId: String) {
  fulfillmentOrderReleaseHold(id: $id, holdIds: $holdIds, externalId: $externalId) {
    fulfillmentOrder { id status }
    userErrors { code field message }
  }
}"""

HOLDS_QUERY = """
query Holds($id: ID!) {
  fulfillmentOrder(id: $id) { id status fulfillmentHolds { id handle reason reasonNotes } }
}"""

REFUND_CREATE = """
mutation RefundCreate($input: RefundInput!) {
  refundCreate(input: $input) {
    refund { id totalRefundedSet { shopMoney { amount currencyCode } } }
    userErrors { field message }
  }
}"""

RETURN_CREATE = """
mutation ReturnCreate($returnInput: ReturnInput!) {
  returnCreate(returnInput: $returnInput) {
    return { id name status }
    userErrors { code field message }
  }
}"""


def _read_levels_query(count: int) -> str:
    parts = [
        f"  l{i}: inventoryItem(id: $i{i}) {{ inventoryLevel(locationId: $l{i}) "
        '{ quantities(names: ["available"]) { quantity } } }'
        for i in range(count)
    ]
    args = ", ".join(f"$i{i}: ID!, $l{i}: ID!" for i in range(count))
    return f"query ReadAvailable({args}) {{\n" + "\n".join(parts) + "\n}"


class ShopifyAdminClient:
    """One shop's GraphQL Admin API. Thread-safe: threads share one model of the shop's
    bucket and take turns, one call in flight at a time, so together they stay within it;
    what they do between calls (reading, writing the database) overlaps."""

    def __init__(
        self,
        shop: str,
        access_token: str,
        *,
        api_version: str = API_VERSION,
        base_url: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 8,
        pace: bool = True,
    ) -> None:
        """`pace=False` only reacts to throttles, never waits ahead of one (a baseline)."""
        self.shop = shop
        self.pace = pace
        self.url = (
            f"{(base_url or f'https://{shop}').rstrip('/')}/admin/api/{api_version}/graphql.json"
        )
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"X-Shopify-Access-Token": access_token, "Content-Type": "application/json"},
        )
        self.clock, self.sleep = clock, sleep
        self.max_attempts = max_attempts
        self.bucket = CostBucket()
        self.stats = ClientStats()
        self._lock = threading.Lock()  # the bucket model and the stats
        # One call in flight at a time: Shopify then reports on the calls in the order they
        # were sent, and the estimate is exact. (With several in flight, a server may count
        # them in another order than they were sent, and no report says which.)
        self._one_at_a_time = threading.Lock()
        self._learned: dict[str, int] = {}  # query text -> requested cost Shopify reported

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ShopifyAdminClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the one way to call ---------------------------------------------------------------

    def execute(
        self, query: str, variables: Mapping[str, Any] | None = None, *, cost: int
    ) -> dict[str, Any]:
        """Run one query or mutation and return its `data`. `cost` is the caller's estimate
        of the requested cost; once Shopify has reported the real one for the same query
        text, that is used instead."""
        with self._one_at_a_time:
            return self._execute(query, variables, cost)

    def _execute(
        self, query: str, variables: Mapping[str, Any] | None, cost: int
    ) -> dict[str, Any]:
        expected = self._learned.get(query, cost)
        body = {"query": query, "variables": dict(variables or {})}
        attempt = throttles = 0
        while attempt < self.max_attempts and throttles < MAX_THROTTLES:
            attempt += 1
            call = self._reserve(expected)
            answered = False

            def settle(status: ThrottleStatus | None, now: float, call: int = call) -> None:
                with self._lock:
                    if status is None:
                        self.bucket.drop(call)
                    else:
                        self.bucket.observe(status, now, call)

            try:
                try:
                    answer = self._http.post(self.url, json=body)
                except httpx.TransportError as exc:
                    settle(None, 0.0)
                    self._back_off(attempt, f"{type(exc).__name__}: {exc}")
                    continue
                now = self.clock()
                if answer.status_code == 429:
                    settle(None, now)
                    retry_after = _seconds(answer.headers.get("Retry-After")) or 1.0
                    self._count(throttled=1, backoff=retry_after)
                    self.sleep(retry_after)
                    attempt, throttles = attempt - 1, throttles + 1  # a throttle is no error
                    continue
                if answer.status_code >= 500:
                    settle(None, now)
                    self._back_off(attempt, f"HTTP {answer.status_code}")
                    continue
                if answer.status_code in (401, 403):
                    raise ShopifyError(
                        f"{self.shop} refused the access token (HTTP {answer.status_code})",
                        shop=self.shop,
                    )
                if answer.status_code != 200:
                    raise ShopifyError(
                        f"{self.shop} answered HTTP {answer.status_code}: {answer.text[:300]}",
                        shop=self.shop,
                    )
                try:
                    payload = answer.json()
                except ValueError as exc:
                    raise ShopifyError(f"{self.shop} answered something that is not JSON") from exc
                cost_info = (payload.get("extensions") or {}).get("cost")
                status = ThrottleStatus.from_extensions(cost_info)
                answered = True
                settle(status, now)
            finally:
                if not answered:
                    settle(None, 0.0)  # no report: what was counted is unknown, so drop it
            errors = payload.get("errors") or []
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                requested = int((cost_info or {}).get("requestedQueryCost") or expected)
                self._learned[query] = requested
                expected = requested
                delay = CostBucket.retry_after_throttle(requested, status) if status else 1.0
                self._count(throttled=1, backoff=delay)
                self.sleep(delay)
                attempt, throttles = attempt - 1, throttles + 1
                continue
            if isinstance(cost_info, dict):
                reported = cost_info.get("requestedQueryCost")
                spent = cost_info.get("actualQueryCost")
                if isinstance(reported, int):
                    self._learned[query] = reported
                self._count(
                    requested=reported if isinstance(reported, int) else 0,
                    spent=spent if isinstance(spent, int) else 0,
                )
            if errors:
                first = errors[0]
                raise ShopifyError(
                    f"{self.shop}: {first.get('message', 'GraphQL error')}",
                    shop=self.shop,
                    errors=errors,
                    shopify_code=(first.get("extensions") or {}).get("code"),
                )
            data = payload.get("data")
            if not isinstance(data, dict):
                raise ShopifyError(f"{self.shop} answered without data", shop=self.shop)
            return data
        raise ShopifyUnavailable(
            f"{self.shop} kept throttling the call ({throttles} times)"
            if throttles >= MAX_THROTTLES
            else f"{self.shop} did not answer after {self.max_attempts} attempts",
            shop=self.shop,
        )

    def _reserve(self, cost: float) -> int:
        """Wait until the bucket holds `cost`, and count this call as on its way."""
        with self._lock:
            wait = self.bucket.wait_for(cost, self.clock()) if self.pace else 0.0
            call = self.bucket.spend(cost)
            self.stats.requests += 1
            self.stats.waited_seconds += wait
        if wait > 0:
            self.sleep(wait)
        return call

    def _count(
        self, *, throttled: int = 0, backoff: float = 0.0, requested: int = 0, spent: int = 0
    ) -> None:
        with self._lock:
            self.stats.throttled += throttled
            self.stats.backoff_seconds += backoff
            self.stats.points_requested += requested
            self.stats.points_spent += spent

    def _back_off(self, attempt: int, why: str) -> None:
        with self._lock:
            self.stats.retried_errors += 1
        if attempt >= self.max_attempts:
            raise ShopifyUnavailable(f"{self.shop} is unavailable: {why}", shop=self.shop)
        delay = min(30.0, 0.25 * 2 ** (attempt - 1))
        log.warning("Shopify %s: %s; retrying in %.2f s", self.shop, why, delay)
        self._count(backoff=delay)
        self.sleep(delay)

    # -- inventory -------------------------------------------------------------------------

    def set_available(
        self,
        changes: Sequence[Change],
        *,
        reason: str = "correction",
        reference: str | None = None,
    ) -> SetOutcome:
        """One `inventorySetQuantities` of at most 250 changes: all are applied or none."""
        if not 0 < len(changes) <= MAX_INPUT_SIZE:
            raise ValueError(f"between 1 and {MAX_INPUT_SIZE} changes per call")
        data = self.execute(
            SET_QUANTITIES,
            {
                "input": {
                    "name": "available",
                    "reason": reason,
                    "referenceDocumentUri": reference,
                    "quantities": [
                        {
                            "inventoryItemId": c.inventory_item_id,
                            "locationId": c.location_id,
                            "quantity": c.quantity,
                            "changeFromQuantity": c.compare_to,
                        }
                        for c in changes
                    ],
                }
            },
            cost=MUTATION_COST,
        )
        result = data["inventorySetQuantities"] or {}
        errors = tuple(result.get("userErrors") or ())
        stale = tuple(
            sorted(
                {
                    int(e["field"][2])
                    for e in errors
                    if e.get("code") in ("CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE")
                    and isinstance(e.get("field"), list)
                    and len(e["field"]) > 2
                    and str(e["field"][2]).isdigit()
                }
            )
        )
        return SetOutcome(
            not errors and bool(result.get("inventoryAdjustmentGroup")), stale, errors
        )

    def read_available(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int | None]:
        """`available` of each (inventory item, location) now; None where it is not stocked."""
        found: dict[tuple[str, str], int | None] = {}
        for start in range(0, len(pairs), READS_PER_QUERY):
            chunk = pairs[start : start + READS_PER_QUERY]
            variables: dict[str, Any] = {}
            for i, (item, location) in enumerate(chunk):
                variables[f"i{i}"], variables[f"l{i}"] = item, location
            data = self.execute(_read_levels_query(len(chunk)), variables, cost=3 * len(chunk))
            for i, pair in enumerate(chunk):
                level = (data.get(f"l{i}") or {}).get("inventoryLevel")
                quantities = (level or {}).get("quantities") or []
                found[pair] = int(quantities[0]["quantity"]) if quantities else None
        return found

    # -- orders ----------------------------------------------------------------------------

    def orders_updated_since(
        self, since: datetime, *, page_size: int = ORDERS_PER_PAGE
    ) -> Iterator[dict[str, Any]]:
        """Every order updated at or after `since`, oldest update first, page by page."""
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        after: str | None = None
        while True:
            data = self.execute(
                ORDERS_QUERY,
                {"first": page_size, "after": after, "query": f"updated_at:>='{stamp}'"},
                cost=2 + page_size * ORDER_COST,
            )
            page = data["orders"]
            for node in page["nodes"]:
                yield self._with_all_lines(node)
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    def _with_all_lines(self, node: dict[str, Any]) -> dict[str, Any]:
        """The order with every line item: pages past the first 50 are fetched by id."""
        lines = node.get("lineItems") or {}
        nodes = list(lines.get("nodes") or [])
        info = lines.get("pageInfo") or {}
        while info.get("hasNextPage"):
            data = self.execute(
                MORE_LINES_QUERY, {"id": node["id"], "after": info.get("endCursor")}, cost=803
            )
            more = ((data.get("order") or {}).get("lineItems")) or {}
            nodes += more.get("nodes") or []
            info = more.get("pageInfo") or {}
        return {**node, "lineItems": {"nodes": nodes, "pageInfo": {"hasNextPage": False}}}

    # -- fulfilment, tags, holds -------------------------------------------------------------

    def fulfillment_create(
        self,
        fulfillment_order_id: str,
        *,
        lines: Mapping[str, int] | None = None,
        tracking: Tracking | None = None,
        notify_customer: bool = False,
    ) -> dict[str, Any]:
        """Fulfil a fulfillment order (all of it, or `lines`: its line item id -> quantity)."""
        group: dict[str, Any] = {"fulfillmentOrderId": fulfillment_order_id}
        if lines:
            group["fulfillmentOrderLineItems"] = [
                {"id": k, "quantity": v} for k, v in lines.items()
            ]
        fulfillment: dict[str, Any] = {
            "lineItemsByFulfillmentOrder": [group],
            "notifyCustomer": notify_customer,
        }
        if tracking is not None:
            fulfillment["trackingInfo"] = {
                k: v
                for k, v in {
                    "number": tracking.number,
                    "company": tracking.company,
                    "url": tracking.url,
                }.items()
                if v is not None
            }
        data = self.execute(FULFILLMENT_CREATE, {"fulfillment": fulfillment}, cost=MUTATION_COST)
        return _payload(data, "fulfillmentCreate", "fulfillment")

    def tags_add(self, resource_id: str, tags: Sequence[str]) -> dict[str, Any]:
        data = self.execute(TAGS_ADD, {"id": resource_id, "tags": list(tags)}, cost=MUTATION_COST)
        return _payload(data, "tagsAdd", "node")

    def fulfillment_order_hold(
        self,
        fulfillment_order_id: str,
        *,
        reason: str,
        notes: str | None = None,
        handle: str | None = None,
        notify_merchant: bool = False,
    ) -> dict[str, Any]:
        """Hold a fulfillment order (`reason`: a FulfillmentHoldReason, e.g. AWAITING_PAYMENT,
        HIGH_RISK_OF_FRAUD, INCORRECT_ADDRESS, OTHER); `handle` tells this app's holds apart."""
        hold: dict[str, Any] = {"reason": reason, "notifyMerchant": notify_merchant}
        if notes is not None:
            hold["reasonNotes"] = notes
        if handle is not None:
            hold["handle"] = handle
        data = self.execute(HOLD, {"id": fulfillment_order_id, "hold": hold}, cost=MUTATION_COST)
        return _payload(data, "fulfillmentOrderHold", "fulfillmentHold")

    def fulfillment_order_release_hold(
        self, fulfillment_order_id: str, *, hold_ids: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Release this app's holds on a fulfillment order (all of them, or `hold_ids`)."""
        variables: dict[str, Any] = {"id": fulfillment_order_id}
        if hold_ids is not None:
            variables["holdIds"] = list(hold_ids)
        data = self.execute(RELEASE_HOLD, variables, cost=MUTATION_COST)
        return _payload(data, "fulfillmentOrderReleaseHold", "fulfillmentOrder")

    def fulfillment_order_holds(self, fulfillment_order_id: str) -> list[dict[str, Any]]:
        """The holds on a fulfillment order now ([] when it has none; ShopifyError if the
        fulfillment order does not exist)."""
        data = self.execute(HOLDS_QUERY, {"id": fulfillment_order_id}, cost=3)
        order = data.get("fulfillmentOrder")
        if order is None:
            raise ShopifyError(f"no fulfillment order {fulfillment_order_id}", shop=self.shop)
        return [dict(h) for h in order.get("fulfillmentHolds") or []]

    # -- refunds and returns -----------------------------------------------------------------

    def refund_create(
        self,
        order_id: str,
        *,
        lines: Sequence[Mapping[str, Any]] = (),
        transactions: Sequence[Mapping[str, Any]] = (),
        shipping_amount: str | None = None,
        note: str | None = None,
        notify: bool = False,
    ) -> dict[str, Any]:
        """`refundCreate`. `lines`: {lineItemId, quantity, restockType, locationId};
        `transactions`: {amount, gateway, kind: "REFUND", parentId} (amounts as strings)."""
        refund: dict[str, Any] = {
            "orderId": order_id,
            "notify": notify,
            "refundLineItems": [dict(li) for li in lines],
            "transactions": [{"orderId": order_id, **t} for t in transactions],
        }
        if shipping_amount is not None:
            refund["shipping"] = {"amount": shipping_amount}
        if note is not None:
            refund["note"] = note
        data = self.execute(REFUND_CREATE, {"input": refund}, cost=MUTATION_COST)
        return _payload(data, "refundCreate", "refund")

    def return_create(
        self,
        order_id: str,
        lines: Sequence[Mapping[str, Any]],
        *,
        requested_at: datetime | None = None,
    ) -> dict[str, Any]:
        """`returnCreate` (an OPEN return). `lines`: {fulfillmentLineItemId, quantity,
        returnReason, returnReasonNote}."""
        given: dict[str, Any] = {"orderId": order_id, "returnLineItems": [dict(li) for li in lines]}
        if requested_at is not None:
            given["requestedAt"] = requested_at.astimezone(UTC).isoformat()
        data = self.execute(RETURN_CREATE, {"returnInput": given}, cost=MUTATION_COST)
        return _payload(data, "returnCreate", "return")


def _payload(data: Mapping[str, Any], mutation: str, key: str) -> dict[str, Any]:
    """The created object, or ShopifyUserErrors carrying the mutation's userErrors."""
    result = data.get(mutation) or {}
    errors = result.get("userErrors") or []
    if errors:
        raise ShopifyUserErrors(
            f"{mutation}: " + "; ".join(str(e.get("message")) for e in errors),
            user_errors=errors,
        )
    value = result.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
