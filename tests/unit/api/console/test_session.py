"""The console's session cookie: signed, expiring, and useless once changed."""

from growbin.api.console import session as cookies
from growbin.api.console.session import ConsoleSession

KEY = cookies.session_key(b"a-test-api-secret")


def test_a_session_survives_the_round_trip_through_its_cookie():
    made = ConsoleSession.new("id1", "oncall", "0123abcd", now=1000)
    assert cookies.decode(cookies.encode(made, KEY), KEY, now=1001) == made


def test_a_changed_cookie_or_another_secret_is_refused():
    cookie = cookies.encode(ConsoleSession.new("id1", "oncall", "0123abcd", now=1000), KEY)
    payload, mac = cookie.split(".")
    forged = cookies.encode(ConsoleSession.new("id2", "mallory", "ffffffff", now=1000), KEY)
    assert cookies.decode(f"{forged.split('.')[0]}.{mac}", KEY, now=1001) is None
    assert cookies.decode(f"{payload}.{mac[:-2]}AA", KEY, now=1001) is None
    assert cookies.decode(cookie, cookies.session_key(b"another-secret"), now=1001) is None
    for junk in (None, "", "no-dot", "a.b.c", "x" * 5000):
        assert cookies.decode(junk, KEY) is None


def test_a_session_expires_after_one_shift():
    made = ConsoleSession.new("id1", "oncall", "0123abcd", now=1000)
    cookie = cookies.encode(made, KEY)
    assert cookies.decode(cookie, KEY, now=1000 + cookies.SESSION_SECONDS - 1) is not None
    assert cookies.decode(cookie, KEY, now=1000 + cookies.SESSION_SECONDS) is None


def test_the_csrf_token_must_match_exactly():
    made = ConsoleSession.new("id1", "oncall", "0123abcd")
    assert made.csrf_matches(made.csrf)
    assert not made.csrf_matches(None)
    assert not made.csrf_matches("")
    assert not made.csrf_matches(made.csrf[:-1])
    assert ConsoleSession.new("id1", "oncall", "0123abcd").csrf != made.csrf


def test_the_cookie_key_is_not_the_api_secret_itself():
    # an API key's stored hash uses the secret directly; the cookie's MAC must never equal one
    assert KEY != b"a-test-api-secret"
    assert len(KEY) == 32
