import httpx
import pytest

from growbin.errors import FatalTaskError
from growbin.runtime.failures import is_transient
from growbin.scan.providers import (
    InvalidToken,
    InvalidTokenError,
    OAuthVerifier,
    ProviderOutputError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    VerifiedUser,
)


def test_a_valid_token_gives_the_kakao_user(fake_kakao):
    with OAuthVerifier(fake_kakao.userinfo_url) as verifier:
        user = verifier.verify("test-user-token")
    assert user == VerifiedUser(provider="kakao", subject="4242", email="user@example.com")
    assert fake_kakao.calls[0].path == "/v2/user/me"


def test_an_unverified_email_is_left_out(fake_kakao):
    fake_kakao.add_user("other-token", 7, email="someone@example.com", verified=False)
    fake_kakao.add_user("no-email-token", 8)
    with OAuthVerifier(fake_kakao.userinfo_url) as verifier:
        assert verifier.verify("other-token").email is None
        assert verifier.verify("no-email-token") == VerifiedUser(provider="kakao", subject="8")


def test_an_invalid_token_is_fatal_and_never_shown(fake_kakao):
    token = "stolen-or-expired-token-0123456789"
    with OAuthVerifier(fake_kakao.userinfo_url) as verifier, pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    exc = info.value
    assert isinstance(exc, InvalidTokenError)
    assert isinstance(exc, FatalTaskError)
    assert not is_transient(exc)
    assert exc.status == 401
    assert "log in again" in str(exc)
    assert token not in str(exc)
    assert token not in repr(exc)


def test_an_empty_token_is_refused_without_asking_the_provider(fake_kakao):
    with OAuthVerifier(fake_kakao.userinfo_url) as verifier, pytest.raises(InvalidTokenError):
        verifier.verify("  ")
    assert fake_kakao.call_count == 0


def test_provider_outages_are_transient(fake_kakao):
    fake_kakao.fail_next(1, 503)
    with OAuthVerifier(fake_kakao.userinfo_url, timeout=0.2) as verifier:
        with pytest.raises(ProviderUnavailableError) as outage:
            verifier.verify("test-user-token")
        fake_kakao.mode = "timeout"
        with pytest.raises(ProviderTimeoutError) as slow:
            verifier.verify("test-user-token")
    assert outage.value.status == 503
    assert is_transient(outage.value)
    assert is_transient(slow.value)


def test_a_body_without_a_user_id_is_an_output_error(fake_kakao):
    fake_kakao.mode = "wrong_schema"
    with OAuthVerifier(fake_kakao.userinfo_url) as verifier, pytest.raises(ProviderOutputError):
        verifier.verify("test-user-token")


def test_openid_connect_userinfo_is_read_too():
    def handler(request):
        assert request.headers["Authorization"] == "Bearer oidc-token"
        return httpx.Response(200, json={"sub": "abc", "email": "a@b.c", "email_verified": True})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    verifier = OAuthVerifier("https://idp.test/userinfo", provider="google", http=http)
    assert verifier.verify("oidc-token") == VerifiedUser(
        provider="google", subject="abc", email="a@b.c"
    )
