import pytest
from pydantic import SecretStr

from growbin.errors import FatalTaskError
from growbin.fakes.kakao_server import DEFAULT_USER_TOKEN, FakeKakao
from growbin.jobs.external import REDACTED, TOKEN_REF_PREFIX, stash_token, submit_oauth_verify
from growbin.runtime.failures import is_transient
from growbin.scan.providers import InvalidTokenError, ProviderUnavailableError

MAP = "growbin.jobs.map_search"
OAUTH = "growbin.jobs.oauth_verify"
# Seoul City Hall (x = longitude, y = latitude)
X, Y = 126.9780, 37.5665


@pytest.fixture
def fake_kakao():
    with FakeKakao() as fake:
        yield fake


@pytest.fixture
def kakao_app(make_app, fake_kakao):
    return make_app(
        kakao_rest_api_key=SecretStr(fake_kakao.api_key),
        kakao_base_url=fake_kakao.base_url,
        oauth_userinfo_url=fake_kakao.userinfo_url,
    )[0]


def test_map_search_without_a_kakao_key_answers_from_the_fixture_and_says_offline(app):
    result = app.tasks[MAP](X, Y, radius=20_000)

    assert result["offline"] is True
    assert result["provider"] == "offline"
    assert result["places"]
    distances = [place["distance"] for place in result["places"]]
    assert distances == sorted(distances)
    assert all(distance <= 20_000 for distance in distances)


def test_map_search_with_a_kakao_key_asks_kakao(kakao_app, fake_kakao):
    result = kakao_app.tasks[MAP](X, Y, 20_000, "재활용센터")

    assert result["offline"] is False
    assert result["provider"] == "kakao"
    assert result["total_count"] >= len(result["places"]) > 0
    assert set(result["places"][0]) >= {"place_name", "x", "y", "distance", "address_name"}
    assert [call.path for call in fake_kakao.calls] == ["/v2/local/search/keyword.json"]


def test_a_kakao_500_is_a_transient_error_that_the_task_base_retries(
    kakao_app, fake_kakao, dead_letters
):
    fake_kakao.fail_next(1, 500)

    # Called directly, Celery's retry re-raises the error instead of scheduling a retry.
    with pytest.raises(ProviderUnavailableError) as caught:
        kakao_app.tasks[MAP](X, Y)

    assert caught.value.status == 500
    assert is_transient(caught.value)
    assert dead_letters == []
    assert fake_kakao.api_key not in str(caught.value)


def test_coordinates_that_are_not_longitude_and_latitude_are_fatal(app, dead_letters):
    with pytest.raises(FatalTaskError, match="longitude"):
        app.tasks[MAP](37.5665, 126.9780)

    assert [letter["retryable"] for letter in dead_letters] == [False]


def test_oauth_verify_says_whose_token_it_is(kakao_app):
    user = kakao_app.tasks[OAUTH](DEFAULT_USER_TOKEN)

    assert user == {"provider": "kakao", "subject": "4242", "email": "user@example.com"}


def test_oauth_verify_takes_a_reference_to_a_stashed_token(kakao_app):
    ctx = kakao_app.growbin_scan_context[1]
    ref = stash_token(ctx.kv, DEFAULT_USER_TOKEN)

    user = kakao_app.tasks[OAUTH](token_ref=ref)

    assert ref.startswith(TOKEN_REF_PREFIX)
    assert DEFAULT_USER_TOKEN not in ref
    assert user["subject"] == "4242"


def test_an_invalid_token_is_dead_lettered_at_once_without_the_token(kakao_app, dead_letters):
    token = "expired-token-0123456789abcdef"

    with pytest.raises(InvalidTokenError) as caught:
        kakao_app.tasks[OAUTH](token)

    assert not is_transient(caught.value)
    assert token not in str(caught.value)
    [letter] = dead_letters
    assert letter["retryable"] is False
    assert letter["args"] == [REDACTED]
    assert token not in repr(letter)


def test_a_token_given_by_keyword_is_redacted_from_the_dead_letter_too(kakao_app, dead_letters):
    with pytest.raises(InvalidTokenError):
        kakao_app.tasks[OAUTH](access_token="expired-token-0123456789abcdef")

    assert dead_letters[0]["kwargs"] == {"access_token": REDACTED}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"token_ref": TOKEN_REF_PREFIX + "unknown"}, "unknown or expired"),
        ({"token_ref": "growbin:scan:abc:classify"}, "pass what stash_token returned"),
        ({}, "exactly one"),
        ({"access_token": "t", "token_ref": TOKEN_REF_PREFIX + "x"}, "exactly one"),
    ],
)
def test_a_bad_token_reference_is_fatal_and_asks_nobody(
    kakao_app, fake_kakao, dead_letters, kwargs, message
):
    with pytest.raises(FatalTaskError, match=message):
        kakao_app.tasks[OAUTH](**kwargs)

    assert fake_kakao.call_count == 0
    assert [letter["retryable"] for letter in dead_letters] == [False]


def test_submitting_a_check_sends_a_reference_never_the_token(kakao_app, monkeypatch):
    sent = []
    monkeypatch.setattr(
        kakao_app, "send_task", lambda name, **options: sent.append((name, options))
    )
    ctx = kakao_app.growbin_scan_context[1]

    submit_oauth_verify(kakao_app, ctx.kv, DEFAULT_USER_TOKEN)

    [(name, options)] = sent
    assert name == OAUTH
    assert DEFAULT_USER_TOKEN not in repr(options)
    assert kakao_app.tasks[OAUTH](**options["kwargs"])["subject"] == "4242"


def test_oauth_verify_logs_neither_the_email_nor_the_token_at_any_level(kakao_app, caplog):
    import logging

    with caplog.at_level(logging.DEBUG):
        done = kakao_app.tasks[OAUTH].apply(args=(DEFAULT_USER_TOKEN,))
        refused = kakao_app.tasks[OAUTH].apply(kwargs={"access_token": "bad-token-0123456789ab"})

    assert done.get()["email"] == "user@example.com"  # the result keeps it, for the caller
    assert refused.failed()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert any("oauth_verify" in record.getMessage() for record in caplog.records), text
    for secret in ("user@example.com", DEFAULT_USER_TOKEN, "bad-token-0123456789ab"):
        assert secret not in text, secret
