"""Storage for dashboard users and their sessions."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update

from aoms.adapters.db import schema as t
from aoms.adapters.db.store import SqlStore
from aoms.domain.errors import Conflict, InvalidInput
from aoms.domain.events import Event
from aoms.domain.users import Role, check_username, hash_password, verify_password

SESSION_HOURS = 12
USER_ADDED = "user.added"
USER_PASSWORD_SET = "user.password_set"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SqlUserStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def add_user(self, username: str, password: str, role: Role, now: datetime) -> User:
        name = check_username(username)
        digest = hash_password(password)  # before the transaction: scrypt takes ~50 ms
        try:
            with self.store.transaction() as tx:
                new_id = tx.conn.execute(
                    insert(t.users)
                    .values(username=name, password_hash=digest, role=role.label, created_at=now)
                    .returning(t.users.c.id)
                ).scalar_one()
                tx.emit(
                    [Event(USER_ADDED, f"user:{new_id}", {"username": name, "role": role.label})],
                    now,
                )
        except Conflict:
            raise Conflict(f"user {name!r} exists", field="username") from None
        return User(int(new_id), name, role)

    def set_password(self, username: str, password: str, now: datetime) -> None:
        name = check_username(username)
        digest = hash_password(password)
        with self.store.transaction() as tx:
            u = t.users.c
            row = tx.conn.execute(
                update(t.users)
                .where(u.username == name)
                .values(password_hash=digest)
                .returning(u.id)
            ).first()
            if row is None:
                raise InvalidInput(f"no user {name!r}", field="username")
            # A new password ends the user's open sessions.
            tx.conn.execute(delete(t.web_sessions).where(t.web_sessions.c.user_id == row.id))
            tx.emit([Event(USER_PASSWORD_SET, f"user:{row.id}", {"username": name})], now)

    def users(self) -> list[User]:
        u = t.users.c
        with self.store.read() as conn:
            rows = conn.execute(select(u.id, u.username, u.role).order_by(u.username)).all()
        return [User(int(r.id), r.username, Role.parse(r.role)) for r in rows]

    def authenticate(self, username: str, password: str) -> User | None:
        u = t.users.c
        with self.store.read() as conn:
            row = conn.execute(
                select(u.id, u.username, u.role, u.password_hash).where(
                    u.username == username.strip().lower(), u.disabled_at.is_(None)
                )
            ).first()
        if row is None:
            # The same work as a wrong password, so a response time tells no username apart.
            verify_password(password, _dummy_hash())
            return None
        if not verify_password(password, row.password_hash):
            return None
        return User(int(row.id), row.username, Role.parse(row.role))

    def open_session(self, user: User, now: datetime) -> tuple[str, Session]:
        """A new session for the user; returns the cookie's token (kept nowhere else)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = now + timedelta(hours=SESSION_HOURS)
        with self.store.writer() as conn:
            s = t.web_sessions.c
            conn.execute(delete(t.web_sessions).where(s.expires_at < now))
            conn.execute(
                insert(t.web_sessions).values(
                    token_hash=_token_hash(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return token, Session(user, csrf, expires)

    def session(self, token: str, now: datetime) -> Session | None:
        s, u = t.web_sessions.c, t.users.c
        with self.store.read() as conn:
            row = conn.execute(
                select(u.id, u.username, u.role, s.csrf_token, s.expires_at)
                .join(t.users, u.id == s.user_id)
                .where(s.token_hash == _token_hash(token), u.disabled_at.is_(None))
            ).first()
        if row is None or row.expires_at <= now:
            return None
        return Session(
            User(int(row.id), row.username, Role.parse(row.role)), row.csrf_token, row.expires_at
        )

    def close_session(self, token: str) -> None:
        with self.store.writer() as conn:
            conn.execute(
                delete(t.web_sessions).where(t.web_sessions.c.token_hash == _token_hash(token))
            )


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password", salt=b"0123456789abcdef")
