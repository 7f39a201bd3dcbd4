"""Key entries, the scope rule, the constant-time match and the exposure rule (gateway.decisions.access)."""

from __future__ import annotations

import pytest

from gateway.decisions import access
from gateway.decisions.access import (
    AccessConfigError,
    Scope,
    allows,
    bearer_token,
    combine,
    exposure_problem,
    is_loopback,
    match_key,
    parse_keys_file,
    parse_keys_variable,
    required_scope,
)

SECRET = "s3cr3t-Value-42"


def test_variable_entries():
    keys = parse_keys_variable(f"curate:{SECRET}, admin:other-key,")
    assert [k.scope for k in keys] == [Scope.CURATE, Scope.ADMIN]
    assert keys[0].key_id.startswith("curate-") and len(keys[0].key_id) == len("curate-") + 8
    assert SECRET not in repr(keys[0]) and SECRET not in keys[0].key_id
    assert parse_keys_variable("") == [] and parse_keys_variable("  ") == []


def test_a_key_may_contain_colons():
    (key,) = parse_keys_variable("admin:a:b:c")
    assert match_key(b"a:b:c", [key]) == key


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (SECRET, "entry 1: expected scope:key"),
        (f"curate:k1,reader:{SECRET}", "entry 2: unknown scope 'reader'"),
        ("curate:", "entry 1: empty key"),
        (f"curate:{SECRET} trailing", "entry 1: the key must be printable ASCII"),
        (f"admin:{SECRET}\x00", "entry 1: the key must be printable ASCII"),
        (f"admin:{SECRET}é", "entry 1: the key must be printable ASCII"),
    ],
)
def test_malformed_entries_name_the_variable_never_the_key(text, problem):
    with pytest.raises(AccessConfigError) as raised:
        parse_keys_variable(text)
    message = str(raised.value)
    assert message.startswith("IMGSEL_API_KEYS ") and problem in message
    assert SECRET not in message


def test_keys_file_skips_blank_lines_and_comments_and_names_the_line():
    text = f"# rotated 2024-05\n\ncurate:{SECRET}\n   # indented comment\nadmin:k2\n"
    assert [k.scope for k in parse_keys_file(text)] == [Scope.CURATE, Scope.ADMIN]
    with pytest.raises(AccessConfigError, match=r"^IMGSEL_API_KEYS_FILE line 3: unknown scope") as raised:
        parse_keys_file(f"curate:k1\n\nsuper:{SECRET}\n")
    assert SECRET not in str(raised.value)


def test_one_key_with_two_scopes_is_ambiguous_and_a_repeat_is_one_key():
    assert len(combine(parse_keys_variable("curate:k1"), parse_keys_file("curate:k1\n"))) == 1
    with pytest.raises(AccessConfigError, match="two scopes") as raised:
        combine(parse_keys_variable(f"curate:{SECRET}"), parse_keys_file(f"admin:{SECRET}"))
    assert SECRET not in str(raised.value)


def test_match_compares_every_key_in_constant_time(monkeypatch):
    keys = parse_keys_variable("curate:first,admin:second,curate:third")
    calls = []

    def counting(a, b):
        calls.append((len(a), len(b)))
        return a == b

    monkeypatch.setattr(access.hmac, "compare_digest", counting)
    assert match_key(b"first", keys) == keys[0]
    assert match_key(b"nobody", keys) is None
    assert match_key(b"x" * 5000, keys) is None
    # No early exit, and digests of equal length whatever the guess: the number and length of comparisons say nothing.
    assert calls == [(32, 32)] * 9


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (b"Bearer abc", b"abc"),
        (b"bearer  abc ", b"abc"),
        (b"BEARER abc", b"abc"),
        (b"Basic abc", None),
        (b"Bearer", None),
        (b"Bearer   ", None),
        (b"", None),
        (None, None),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/healthz", None),
        ("/readyz", None),
        ("/metrics", None),
        ("/docs", None),
        ("/openapi.json", None),
        ("/v1/select", Scope.CURATE),
        ("/v1/select/", Scope.CURATE),
        ("/v1/dedup", Scope.CURATE),
        ("/v1/report", Scope.CURATE),
        ("/v1/search", Scope.CURATE),
        ("/v1/placeholders", Scope.ADMIN),
        ("/v1/placeholders/p-1", Scope.ADMIN),
        ("/v1/index", Scope.ADMIN),
        ("/v1/index/a/b", Scope.ADMIN),
        ("/v1/anything-new", Scope.ADMIN),
        ("/", Scope.ADMIN),
    ],
)
def test_required_scope(path, scope):
    assert required_scope(path) == scope


def test_admin_covers_everything_curate_only_curation():
    assert allows(Scope.ADMIN, Scope.ADMIN) and allows(Scope.ADMIN, Scope.CURATE)
    assert allows(Scope.CURATE, Scope.CURATE) and not allows(Scope.CURATE, Scope.ADMIN)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("imgsel.internal", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_exposure_rule():
    problem = exposure_problem("0.0.0.0", keys_configured=False, allow_unauthenticated=False)
    assert problem and "IMGSEL_HOST=0.0.0.0" in problem and "IMGSEL_ALLOW_UNAUTHENTICATED" in problem
    assert exposure_problem("0.0.0.0", keys_configured=True, allow_unauthenticated=False) is None
    assert exposure_problem("0.0.0.0", keys_configured=False, allow_unauthenticated=True) is None
    assert exposure_problem("127.0.0.1", keys_configured=False, allow_unauthenticated=False) is None
