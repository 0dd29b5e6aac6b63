"""Dashboard users: roles, usernames and password hashes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoms.domain.errors import InvalidInput
from aoms.domain.users import Role, check_username, hash_password, verify_password


def test_each_role_may_do_what_the_roles_below_it_may() -> None:
    assert Role.ADMIN.may(Role.OPERATOR) and Role.OPERATOR.may(Role.OPERATOR)
    assert Role.OPERATOR.may(Role.VIEWER)
    assert not Role.VIEWER.may(Role.OPERATOR)
    assert not Role.OPERATOR.may(Role.ADMIN)
    assert Role.parse(" Operator ") is Role.OPERATOR
    with pytest.raises(InvalidInput) as err:
        Role.parse("root")
    assert err.value.field == "role"


def test_a_hash_is_scrypt_of_the_password_with_its_salt() -> None:
    stored = hash_password("correct horse battery", salt=b"0123456789abcdef")
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    expected = hashlib.scrypt(
        b"correct horse battery", salt=b"0123456789abcdef", n=16384, r=8, p=1, dklen=32
    )
    assert base64.b64decode(key) == expected
    assert base64.b64decode(salt) == b"0123456789abcdef"


def test_two_hashes_of_one_password_differ_and_both_verify() -> None:
    a, b = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert a != b
    assert verify_password("correct horse battery", a) and verify_password(
        "correct horse battery", b
    )


@settings(max_examples=10, deadline=None)  # each hash takes ~50 ms on purpose
@given(st.text(min_size=10, max_size=40), st.text(min_size=1, max_size=5))
def test_only_the_same_password_verifies(password: str, extra: str) -> None:
    stored = hash_password(password)
    assert verify_password(password, stored)
    assert not verify_password(password + extra, stored)


def test_a_short_password_or_a_malformed_hash_is_refused() -> None:
    with pytest.raises(InvalidInput):
        hash_password("short")
    assert not verify_password("whatever-it-is", "not a hash")
    assert not verify_password("whatever-it-is", "bcrypt$1$2$3$AAAA$AAAA")


def test_usernames_are_lower_case_and_plain() -> None:
    assert check_username(" Ops.Lead@Example ") == "ops.lead@example"
    for bad in ("a", "has space", "-starts-with-dash", "x" * 65, "semi;colon"):
        with pytest.raises(InvalidInput):
            check_username(bad)
