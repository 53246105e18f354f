"""The dev stack's admin token: created once per state dir, printed once, kept there for later runs."""

from __future__ import annotations

import os
from pathlib import Path

from shopstream.auth import TokenEntry, hash_token, new_token, write_tokens

TOKENS_FILE = "api-tokens.yaml"
ADMIN_TOKEN_FILE = "dev-admin-token"
ADMIN_NAME = "dev-admin"


def dev_admin_token(state_dir: Path) -> tuple[Path, str, bool]:
    """(tokens file, admin token, created now): the state dir's dev admin token, made when missing."""
    tokens, secret = state_dir / TOKENS_FILE, state_dir / ADMIN_TOKEN_FILE
    if tokens.exists() and secret.exists():
        return tokens, secret.read_text(encoding="utf-8").strip(), False
    token = new_token()
    write_tokens(tokens, [TokenEntry(name=ADMIN_NAME, roles=("admin",), sha256=hash_token(token))])
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return tokens, token, True


def read_dev_admin_token(state_dir: Path) -> str | None:
    """The dev admin token kept in a state dir (None when dev has not made one)."""
    path = state_dir / ADMIN_TOKEN_FILE
    return path.read_text(encoding="utf-8").strip() if path.exists() else None
