"""Creating users and keys, checking passwords and keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clientela.core.clock import utcnow
from clientela.core.errors import Conflict, InvalidInput
from clientela.customers.normalize import normalize_email
from clientela.team.models import KEY_KINDS, ROLES, ApiKey, User

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
KEY_PREFIXES = {"write": "cw_", "secret": "cs_"}
INTERNAL_PREFIX = "internal"  # the prefix of internal sources (see internal_source)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: int
    kind: str
    name: str
    key: str


def hash_password(password: str) -> str:
    """A salted scrypt hash in `scrypt$salt$digest` form."""
    salt = secrets.token_hex(16)
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), **_SCRYPT).hex()
    return f"scrypt${salt}${digest}"


def password_matches(password: str, stored: str) -> bool:
    try:
        _scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    candidate = hashlib.scrypt(password.encode(), salt=salt.encode(), **_SCRYPT).hex()
    return hmac.compare_digest(candidate, digest)


def hash_key(key: str) -> str:
    # Keys are 192 random bits, so a fast hash is enough and keeps every request cheap.
    return hashlib.sha256(key.encode()).hexdigest()


def create_user(*, session: Session, email: str, password: str, role: str) -> User:
    """A new dashboard user; the e-mail must be free and the password at least 8 characters."""
    address = normalize_email(email)
    if address is None:
        raise InvalidInput(f"email: {email!r} is not an e-mail address", code="invalid_email")
    if len(password) < 8:
        raise InvalidInput("password: must be at least 8 characters", code="weak_password")
    if role not in ROLES:
        raise InvalidInput(f"role: must be one of {', '.join(ROLES)}", code="invalid_role")
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise Conflict(f"email: a user {address} exists already", code="user_exists")
    user = User(email=address, password_hash=hash_password(password), role=role,
                created_at=utcnow())
    session.add(user)
    session.flush()
    return user


def authenticate(*, session: Session, email: str, password: str) -> User | None:
    """The user with these credentials, or None. Only reads, so the slow password hash is
    never computed while holding a write lock."""
    address = normalize_email(email)
    user = session.scalar(select(User).where(User.email == address)) if address else None
    if user is None or not password_matches(password, user.password_hash):
        return None
    return user


def record_sign_in(*, session: Session, user_id: int) -> None:
    session.execute(update(User).where(User.id == user_id).values(last_login_at=utcnow()))


def find_user(*, session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email))


def create_key(*, session: Session, kind: str, name: str = "") -> IssuedKey:
    """A new key; only its hash is stored, so the returned value is shown once."""
    if kind not in KEY_KINDS:
        raise InvalidInput(f"kind: must be one of {', '.join(KEY_KINDS)}", code="invalid_kind")
    key = KEY_PREFIXES[kind] + secrets.token_urlsafe(24)
    row = ApiKey(kind=kind, name=name or f"{kind} key", prefix=key[:10], key_hash=hash_key(key),
                 created_at=utcnow())
    session.add(row)
    session.flush()
    return IssuedKey(id=row.id, kind=kind, name=row.name, key=key)


def find_key(*, session: Session, key: str, kind: str) -> ApiKey | None:
    """The live key of `kind` with this value, or None."""
    return session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.kind == kind,
                             ApiKey.revoked_at.is_(None))
    )


def internal_source(*, session: Session, name: str) -> int:
    """The id of a source for events Clientela records itself (e-mail opens, clicks): a
    write key nobody holds, revoked from birth so it can never be used to send events."""
    found = session.scalar(select(ApiKey.id).where(ApiKey.name == name,
                                                   ApiKey.prefix == INTERNAL_PREFIX))
    if found is not None:
        return int(found)
    now = utcnow()
    row = ApiKey(kind="write", name=name, prefix=INTERNAL_PREFIX,
                 key_hash=hash_key(secrets.token_urlsafe(32)), created_at=now, revoked_at=now)
    session.add(row)
    session.flush()
    return row.id
