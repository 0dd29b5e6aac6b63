"""Dashboard users: roles, what each may do, and password hashing (stdlib scrypt)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from enum import IntEnum

from aoms.domain.errors import InvalidInput

USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{1,63}")
MIN_PASSWORD = 10
# scrypt with n=2**14, r=8, p=1 (16 MiB, the parameters RFC 7914 names for interactive use).
N, R, P, KEY_BYTES = 2**14, 8, 1, 32


class Role(IntEnum):
    """Each role may do everything the ones below it may."""

    VIEWER = 1  # reads every page
    OPERATOR = 2  # acts on orders and stock: route again, adjust stock (later: release holds)
    ADMIN = 3  # and manages users

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise InvalidInput(
                f"unknown role {name!r}: use viewer, operator or admin", field="role"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()

    def may(self, needed: Role) -> bool:
        return self >= needed


def check_username(name: str) -> str:
    name = name.strip().lower()
    if not USERNAME.fullmatch(name):
        raise InvalidInput(
            "a username is 2–64 characters: letters, digits and . _ @ -", field="username"
        )
    return name


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$key` (base64). Refuses passwords shorter than MIN_PASSWORD."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters", field="password")
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=KEY_BYTES)
    b64 = base64.b64encode
    return f"scrypt${N}${R}${P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)
