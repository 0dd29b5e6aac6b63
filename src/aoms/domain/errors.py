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
