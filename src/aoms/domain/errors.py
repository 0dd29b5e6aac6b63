"""One error tree with stable codes; the API maps it to problem+json in one place."""

from __future__ import annotations

from typing import Any


class AomsError(Exception):
    """Base of every error aoms raises on purpose. `code` is stable and documented."""

    code = "aoms_error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class InvalidInput(AomsError):
    code = "invalid_input"
    status = 422


class InvalidMoney(InvalidInput):
    code = "invalid_money"


class CurrencyMismatch(AomsError):
    code = "currency_mismatch"
    status = 422


class InvalidPayload(InvalidInput):
    """A webhook or channel payload that cannot be read as an order."""

    code = "invalid_payload"


class NotFound(AomsError):
    code = "not_found"
    status = 404


class Conflict(AomsError):
    code = "conflict"
    status = 409


class UnknownSku(InvalidInput):
    code = "unknown_sku"


class UnknownLocation(InvalidInput):
    code = "unknown_location"


class InsufficientStock(Conflict):
    """An adjustment would take on_hand below what is reserved or below zero."""

    code = "insufficient_stock"


class ValueOutOfRange(InvalidInput):
    """A value the database cannot hold (too long, too large)."""

    code = "value_out_of_range"


class Unavailable(AomsError):
    """A dependency (the database) cannot be reached; the same call may succeed later."""

    code = "unavailable"
    status = 503


class NoPromiseModel(Conflict):
    """No delivery-promise model has been fitted yet (import a history, then fit)."""

    code = "no_promise_model"


class NoLocationCanShip(Conflict):
    """No active location holds the stock to ship the whole order."""

    code = "no_location_can_ship"


class UnknownShop(NotFound):
    code = "unknown_shop"


class UnknownPolicy(InvalidInput):
    """A routing policy name that no built-in or installed plug-in answers to."""

    code = "unknown_routing_policy"


class InvalidPolicyDocument(InvalidInput):
    """A routing policy document whose values cannot be used (the field says which)."""

    code = "invalid_policy_document"


class PlanBroken(AomsError):
    """A routing policy (a plug-in) returned a plan that breaks its contract."""

    code = "routing_plan_invalid"
    status = 500


# -- warehouse / 3PL hand-off -----------------------------------------------------------------


class InvalidTransition(Conflict):
    """A fulfilment order cannot move from its state to the one asked (details say which)."""

    code = "invalid_fulfilment_transition"


class NotReadyForFulfilment(Conflict):
    """The order may not be handed to a warehouse yet (not routed, cancelled, or held)."""

    code = "not_ready_for_fulfilment"


class InvalidSignature(AomsError):
    """A 3PL callback or carrier webhook whose signature (token, timestamp) does not verify."""

    code = "invalid_signature"
    status = 401


class OverShipment(InvalidInput):
    """A shipment of more units than the fulfilment order still expects."""

    code = "over_shipment"


# -- returns and refunds -----------------------------------------------------------------------


class ReturnQuantityExceeded(Conflict):
    """More units asked back than the line has left to return or refund."""

    code = "return_quantity_exceeded"


class NothingToRefund(InvalidInput):
    code = "nothing_to_refund"


class ShippingAlreadyRefunded(Conflict):
    code = "shipping_already_refunded"


class RefundExceedsCaptured(Conflict):
    """A refund larger than what the order's payments can still take back."""

    code = "refund_exceeds_captured"


class AlreadyRefunded(Conflict):
    code = "already_refunded"


class InvalidReturnTransition(Conflict):
    """A return asked to move to a state its current state cannot reach."""

    code = "invalid_return_transition"


class NotReturnable(Conflict):
    """The order or line cannot be returned (not delivered, final sale, window closed …)."""

    code = "not_returnable"


class AlreadyDispositioned(Conflict):
    """Units of a return that were restocked, refurbished or disposed of already."""

    code = "already_dispositioned"


class UnknownReturn(NotFound):
    code = "unknown_return"


class PaymentsAlreadyRecorded(Conflict):
    code = "payments_already_recorded"


# -- shipping ---------------------------------------------------------------------------------


class MissingDimensions(InvalidInput):
    """A product to be packed has no length, width or height (PUT /v1/products/{sku})."""

    code = "missing_dimensions"


class ItemFitsNoBox(InvalidInput):
    """A unit is larger or heavier than every box in the merchant's box list."""

    code = "item_fits_no_box"


class NoBoxes(Conflict):
    code = "no_boxes"


class InvalidRateCard(InvalidInput):
    code = "invalid_rate_card"


class CustomsDataMissing(InvalidInput):
    """An international shipment whose customs data is incomplete: no label is bought."""

    code = "customs_data_missing"


class NoRates(Conflict):
    """No carrier answered with a quote for a parcel (each carrier's reason is in details)."""

    code = "no_rates"


class CarrierError(AomsError):
    """A carrier refused or failed a request (its own message is kept)."""

    code = "carrier_error"
    status = 502


class ShipmentNotVoidable(Conflict):
    code = "shipment_not_voidable"


class BelowShipped(Conflict):
    """An edit would take a line below the units that have already shipped."""

    code = "quantity_below_shipped"


class HoldNotOpen(Conflict):
    """A hold that was released or cancelled already."""

    code = "hold_not_open"


# -- Shopify Admin API ---------------------------------------------------------------------


class ShopifyError(AomsError):
    """Shopify's Admin API refused a request or answered with an error we cannot retry."""

    code = "shopify_error"
    status = 502


class ShopifyUnavailable(Unavailable):
    """Shopify could not be reached, or kept answering 5xx or THROTTLED past every retry."""

    code = "shopify_unavailable"


class ShopifyNotConfigured(InvalidInput):
    """No Admin API access token is configured for the shop."""

    code = "shopify_not_configured"


class ShopifyUserErrors(ShopifyError):
    """A mutation ran and answered `userErrors` (the details carry them, with their codes)."""

    code = "shopify_user_errors"
    status = 422


class OrderOnHold(Conflict):
    """An action an open hold forbids (a label for a held order): release the hold first."""

    code = "order_on_hold"


class OrderAtWarehouse(Conflict):
    """A change to units a warehouse has (it may be packing them): cancel them there first."""

    code = "order_at_warehouse"
