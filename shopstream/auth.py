"""API bearer tokens: the tokens file, roles, and a constant-time check (kernel; no I/O but reading the file).

The file named by `SHOPSTREAM_API_TOKENS_FILE` (a Kubernetes Secret in production)::

    tokens:
      - name: alice            # recorded as "who" on decisions
        roles: [reviewer]      # viewer | reviewer | operator | admin
        sha256: 3f1c…          # hex SHA-256 of the token; the token itself is never stored

Roles grant: `viewer` reads (orders, ATP, history, work items); `reviewer` = viewer + claims and decides
work items; `operator` = viewer + operator tools; `admin` = everything (lists, too). A request presents
`Authorization: Bearer <token>`; the token's SHA-256 is compared with every entry's in constant time
(`hmac.compare_digest`, no early exit), so timing tells nothing about which entry nearly matched.
The file is re-read when its modification time changes (a rotated Secret applies without a restart).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopstream.yamlmodel import load_yaml_model

Role = Literal["viewer", "reviewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "reviewer", "operator", "admin")
#: What each role may do, as the roles it implies.
GRANTS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"viewer"}),
    "reviewer": frozenset({"viewer", "reviewer"}),
    "operator": frozenset({"viewer", "operator"}),
    "admin": frozenset(ROLES),
}


class TokenFileError(ValueError):
    """The tokens file is missing or invalid."""


class TokenEntry(BaseModel):
    """One token: who it is, what it may do, the SHA-256 of the secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
    roles: tuple[Role, ...] = Field(min_length=1)
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("sha256 must be 64 hex digits (the SHA-256 of the token, never the token)")
        return value


class TokensFile(BaseModel):
    """The tokens file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: tuple[TokenEntry, ...] = ()

    @field_validator("tokens")
    @classmethod
    def _unique(cls, value: tuple[TokenEntry, ...]) -> tuple[TokenEntry, ...]:
        names = [t.name for t in value]
        hashes = [t.sha256 for t in value]
        if len(set(names)) != len(names):
            raise ValueError("token names must be unique (a name is recorded as who decided)")
        if len(set(hashes)) != len(hashes):
            raise ValueError("two entries carry the same sha256")
        return value


@dataclass(frozen=True)
class Principal:
    """Who presented a valid token."""

    name: str
    roles: frozenset[str]

    def allows(self, role: str) -> bool:
        """Whether one of the principal's roles grants `role`."""
        return any(role in GRANTS.get(r, frozenset()) for r in self.roles)


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token (what the file stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when absent or another scheme."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def load_tokens(path: Path | str) -> TokensFile:
    """Read and validate a tokens file; `TokenFileError` naming the file otherwise."""
    return load_yaml_model(path, TokensFile, TokenFileError, "API tokens file", empty_is_defaults=True)


def write_tokens(path: Path, entries: list[TokenEntry]) -> None:
    """Write a tokens file readable by its owner only (the dev stack's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"tokens": [{"name": e.name, "roles": list(e.roles), "sha256": e.sha256} for e in entries]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(body, out, sort_keys=False)


class TokenStore:
    """The tokens of a file, re-read when the file changes; `authenticate` checks one token."""

    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path else None
        self._mtime: float | None = None
        self._entries: tuple[TokenEntry, ...] = ()
        if self.path is not None:
            self._reload(force=True)

    @property
    def configured(self) -> bool:
        """Whether a tokens file is set (without one every request is refused)."""
        return self.path is not None

    def _reload(self, force: bool = False) -> None:
        assert self.path is not None
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            if force:
                raise TokenFileError(f"{self.path}: cannot read API tokens file: {exc.strerror or exc}") from None
            return  # a Secret being swapped: keep the last good tokens
        if force or mtime != self._mtime:
            try:
                self._entries = load_tokens(self.path).tokens
            except TokenFileError:
                if force:
                    raise
                return  # a broken rewrite keeps the last good tokens; the next change is read again
            self._mtime = mtime

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal of a presented token; None when it matches no entry (constant time over entries)."""
        if self.path is None or not token:
            return None
        self._reload()
        presented = hash_token(token)
        found: TokenEntry | None = None
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.sha256):  # every entry compared: no early exit
                found = entry
        return Principal(found.name, frozenset(found.roles)) if found is not None else None
