from pathlib import Path

import pytest
from pydantic import ValidationError

from aoms.config import Settings
from aoms.domain.routing import Policy


def test_settings_come_from_aoms_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOMS_DATABASE_URL", "postgresql://postgres@db/aoms")
    monkeypatch.setenv("AOMS_SHOPIFY_WEBHOOK_SECRET", "app-secret-123")
    monkeypatch.setenv("AOMS_SHOPIFY_SHOP_SECRETS", '{"a.myshopify.com": "shop-secret-a"}')
    s = Settings()
    assert s.database_url == "postgresql+psycopg://postgres@db/aoms"
    assert s.webhook_secrets("a.myshopify.com") == ["shop-secret-a", "app-secret-123"]
    assert s.webhook_secrets("b.myshopify.com") == ["app-secret-123"]


def test_a_toml_file_named_by_aoms_config_is_read_and_env_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "aoms.toml"
    file.write_text('database_url = "sqlite:///x.db"\ndefault_routing_policy = "shopify_default"\n')
    monkeypatch.setenv("AOMS_CONFIG", str(file))
    assert Settings().default_routing_policy is Policy.SHOPIFY_DEFAULT
    monkeypatch.setenv("AOMS_DATABASE_URL", "sqlite:///y.db")
    assert Settings().database_url == "sqlite:///y.db"


@pytest.mark.parametrize(
    "field, value",
    [
        ("database_url", "mysql://root@localhost/db"),
        ("shopify_webhook_secret", "short"),
        ("worker_poll_seconds", 0),
        ("no_such_setting", 1),
    ],
)
def test_unsafe_or_unknown_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})
