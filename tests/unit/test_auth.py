"""API tokens: the file, roles and their grants, bearer parsing, the check, and the dev admin token."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shopstream.auth import (
    Principal,
    TokenEntry,
    TokenFileError,
    TokenStore,
    bearer,
    hash_token,
    load_tokens,
    write_tokens,
)
from shopstream.dev.tokens import dev_admin_token, read_dev_admin_token


def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    write_tokens(path, [TokenEntry(name="alice", roles=("reviewer",), sha256=hash_token("a-secret")),
                        TokenEntry(name="bob", roles=("viewer",), sha256=hash_token("b-secret")),
                        TokenEntry(name="ops", roles=("operator", "viewer"), sha256=hash_token("o-secret"))])
    return path


def test_a_token_is_known_by_its_hash_and_names_its_principal(tmp_path: Path) -> None:
    store = TokenStore(tokens_file(tmp_path))
    assert store.authenticate("a-secret") == Principal("alice", frozenset({"reviewer"}))
    assert store.authenticate("b-secret") == Principal("bob", frozenset({"viewer"}))
    assert store.authenticate("nope") is None and store.authenticate("") is None and store.authenticate(None) is None
    assert "a-secret" not in (tmp_path / "tokens.yaml").read_text()
    assert stat.S_IMODE(os.stat(tmp_path / "tokens.yaml").st_mode) == 0o600


def test_roles_grant_what_the_issue_says() -> None:
    viewer, reviewer = Principal("v", frozenset({"viewer"})), Principal("r", frozenset({"reviewer"}))
    operator, admin = Principal("o", frozenset({"operator"})), Principal("a", frozenset({"admin"}))
    assert viewer.allows("viewer") and not viewer.allows("reviewer") and not viewer.allows("admin")
    assert reviewer.allows("viewer") and reviewer.allows("reviewer") and not reviewer.allows("admin")
    assert operator.allows("viewer") and operator.allows("operator") and not operator.allows("reviewer")
    assert all(admin.allows(r) for r in ("viewer", "reviewer", "operator", "admin"))


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), ("", None), (None, None)])
def test_bearer_header(header: str | None, token: str | None) -> None:
    assert bearer(header) == token


@pytest.mark.parametrize(("body", "reason"), [
    ("tokens:\n  - name: a\n    roles: [root]\n    sha256: " + "0" * 64 + "\n", "tokens.0.roles.0"),
    ("tokens:\n  - name: a\n    roles: [viewer]\n    sha256: plain-token\n", "64 hex digits"),
    ("tokens:\n  - name: a\n    roles: []\n    sha256: " + "0" * 64 + "\n", "tokens.0.roles"),
    ("tokens:\n  - name: a\n    roles: [viewer]\n    sha256: " + "a" * 64 + "\n  - name: a\n    roles: [admin]\n"
     "    sha256: " + "b" * 64 + "\n", "unique"),
    ("tokens: [\n", "not valid YAML"),
    ("tokens:\n  - name: a\n    roles: [viewer]\n    sha256: " + "0" * 64 + "\n    token: x\n", "tokens.0.token"),
])
def test_an_invalid_tokens_file_is_refused_naming_the_problem(tmp_path: Path, body: str, reason: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(body)
    with pytest.raises(TokenFileError, match=reason):
        load_tokens(path)
    with pytest.raises(TokenFileError):
        TokenStore(path)


def test_a_missing_file_is_refused_at_start_and_a_broken_rewrite_keeps_the_last_good_tokens(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot read"):
        TokenStore(tmp_path / "missing.yaml")
    path = tokens_file(tmp_path)
    store = TokenStore(path)
    path.write_text("tokens: [\n")
    os.utime(path, (1e9, 1e9))
    assert store.authenticate("a-secret") is not None
    assert not TokenStore(None).configured and TokenStore(None).authenticate("a-secret") is None


def test_dev_makes_one_admin_token_per_state_dir(tmp_path: Path) -> None:
    tokens, token, created = dev_admin_token(tmp_path)
    assert created and TokenStore(tokens).authenticate(token) == Principal("dev-admin", frozenset({"admin"}))
    again = dev_admin_token(tmp_path)
    assert again == (tokens, token, False)
    assert read_dev_admin_token(tmp_path) == token and read_dev_admin_token(tmp_path / "x") is None


def test_api_serve_refuses_a_broken_tokens_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from shopstream.cli import main

    bad = tmp_path / "tokens.yaml"
    bad.write_text("tokens:\n  - name: a\n    roles: [viewer]\n    sha256: my-plain-token\n")
    monkeypatch.setenv("SHOPSTREAM_API_TOKENS_FILE", str(bad))
    assert main(["api", "serve"]) == 2
    assert "SHOPSTREAM_API_TOKENS_FILE" in capsys.readouterr().err
