"""The Shopify settings: a pinned API version, per-shop tokens, and a clear error without one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aoms.bootstrap import shopify_admin
from aoms.config import Settings
from aoms.domain.errors import ShopifyNotConfigured


def test_the_api_version_is_pinned_and_must_be_a_quarterly_release() -> None:
    assert Settings().shopify_api_version == "2026-10"
    assert Settings(shopify_api_version="2027-01").shopify_api_version == "2027-01"
    with pytest.raises(ValidationError):
        Settings(shopify_api_version="2026-11")


def test_a_shop_needs_its_own_access_token() -> None:
    settings = Settings(shopify_admin_tokens={"a.myshopify.com": "shpat_1"})
    with shopify_admin(settings, "a.myshopify.com") as client:
        assert client.url == "https://a.myshopify.com/admin/api/2026-10/graphql.json"
    with pytest.raises(ShopifyNotConfigured):
        shopify_admin(settings, "b.myshopify.com")
