"""One validated settings object, read from AOMS_* environment variables or a TOML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from aoms.domain.routing import Policy


class Settings(BaseSettings):
    """Every knob aoms has. Environment variables win over the file named by AOMS_CONFIG."""

    model_config = SettingsConfigDict(env_prefix="AOMS_", extra="forbid")

    database_url: str = Field(
        default="sqlite:///./aoms.db",
        description="SQLAlchemy URL: a SQLite file (default) or postgresql+psycopg://…",
    )
    shopify_webhook_secret: SecretStr | None = Field(
        default=None, description="The app's client secret: signs every shop's webhooks."
    )
    shopify_previous_webhook_secret: SecretStr | None = Field(
        default=None, description="The secret before a rotation; accepted until removed."
    )
    shopify_shop_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Per-shop signing secrets, e.g. {"acme.myshopify.com": "…"} (as JSON).',
    )
    default_routing_policy: Policy = Policy.OPTIMAL
    worker_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    run_workers: bool = Field(default=True, description="Run the inbox and outbox workers.")
    inbox_threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Inbox threads; 0 = 1, or 4 in `aoms worker` on PostgreSQL.",
    )
    log_level: str = "INFO"
    # -- shipping: carriers (docs/carriers.md) --
    table_rates_csv: Path | None = Field(
        default=None, description="The merchant's rate card (CSV) for the built-in carrier."
    )
    table_surcharges_csv: Path | None = Field(default=None, description="Its surcharges (CSV).")
    zones_csv: Path | None = Field(
        default=None, description="A zone chart (origin_zip,dest_zip,zone) to use instead of "
        "the USPS zones shipped with aoms.",
    )  # fmt: skip
    easypost_api_key: SecretStr | None = None
    easypost_base_url: str = "https://api.easypost.com/v2"
    easypost_webhook_secret: SecretStr | None = None
    shippo_api_token: SecretStr | None = None
    shippo_base_url: str = "https://api.goshippo.com"
    shippo_webhook_secret: SecretStr | None = Field(
        default=None, description="Shippo's HMAC secret (Shippo-Auth-Signature)."
    )
    shippo_webhook_token: SecretStr | None = Field(
        default=None, description="The ?token= the Shippo webhook URL carries."
    )
    rate_shop_deadline_seconds: float = Field(default=2.5, gt=0, le=60)
    rate_cache_seconds: float = Field(default=600, ge=0, le=86_400)
    shopify_api_version: str = Field(
        default="2026-10",
        pattern=r"^(20\d\d-(01|04|07|10)|unstable)$",
        description="The Shopify Admin API version aoms calls (quarterly: YYYY-01/04/07/10).",
    )
    shopify_admin_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Admin API access tokens per shop, e.g. {"acme.myshopify.com": "shpat_…"}.',
    )
    shopify_admin_url: str | None = Field(
        default=None,
        description="Base URL of the Admin API instead of https://{shop} (a proxy, a test server).",
    )
    stock_check_seconds: float = Field(
        default=3600,
        ge=0,
        le=86_400,
        description="How often the workers check every stock counter against its reservations "
        "and movements (a breach is a stock.invariant_broken event); 0: only `aoms ledger "
        "check-stock`.",
    )
    shopify_push_seconds: float = Field(
        default=60,
        ge=0,
        le=86_400,
        description="How often the workers push changed available-to-sell to each shop with "
        "an access token and mapped locations (0: only when asked).",
    )
    shopify_push_after_change_seconds: float = Field(
        default=5,
        ge=0,
        le=86_400,
        description="After aoms's events (an order reserved, a shipment, a count), push "
        "available-to-sell this soon, without waiting for shopify_push_seconds.",
    )
    reports_dir: Path | None = Field(
        default=None,
        description="A folder of policy-lab HTML reports (`aoms simulate … --html`) the "
        "dashboard lists.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        if not (url.startswith("sqlite:///") or url.startswith("postgresql+psycopg://")):
            raise ValueError("use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        return url

    @field_validator("shopify_webhook_secret", "shopify_previous_webhook_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("a webhook secret shorter than 8 characters is refused")
        return value

    def webhook_secrets(self, shop: str) -> list[str]:
        """The secrets a delivery from `shop` may be signed with (current first)."""
        found = [
            self.shop_secret(shop),
            self.shopify_webhook_secret,
            self.shopify_previous_webhook_secret,
        ]
        return [s.get_secret_value() for s in found if s is not None]

    def shop_secret(self, shop: str) -> SecretStr | None:
        return self.shopify_shop_secrets.get(shop)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("AOMS_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(f"AOMS_CONFIG names no file: {config_file}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
