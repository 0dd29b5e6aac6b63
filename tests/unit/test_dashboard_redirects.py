"""After sign-in the dashboard sends a user on only to a path on its own site."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aoms.entrypoints.web.pages import _safe_next


@given(st.text(max_size=60))
def test_whatever_next_says_the_user_stays_on_this_site(url: str) -> None:
    got = _safe_next(url)
    assert got.startswith("/") and not got.startswith("//") and "\\" not in got
    assert got in (url, "/")


def test_a_local_path_is_kept_and_anything_else_goes_home() -> None:
    assert _safe_next("/orders?status=backordered") == "/orders?status=backordered"
    for url in ("//evil.example/", "https://evil.example/", "/\\evil.example", "orders", ""):
        assert _safe_next(url) == "/"
