import subprocess
import sys
import threading
import time

import httpx
import pytest

from growbin.fakes import FakeKakao, FakeOpenAI, RecordedCall

GOOD = {"Authorization": "Bearer test-openai-key"}
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def _post(fake, headers=GOOD, body=BODY, client=None):
    send = client.post if client else httpx.post
    return send(fake.base_url + "/chat/completions", headers=headers, json=body)


def test_the_fake_speaks_chat_completions_and_records_each_call(fake_openai):
    response = _post(fake_openai)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o-mini"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["total_tokens"] > 0
    assert fake_openai.call_count == 1
    call = fake_openai.calls[0]
    assert isinstance(call, RecordedCall)
    assert (call.method, call.path, call.model, call.status) == (
        "POST",
        "/v1/chat/completions",
        "gpt-4o-mini",
        200,
    )


def test_the_fake_checks_the_api_key_and_the_body(fake_openai):
    assert _post(fake_openai, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert _post(fake_openai, body={"model": "gpt-5"}).status_code == 400
    missing_model = _post(fake_openai, body={"messages": []})
    assert missing_model.json()["error"]["code"] == "missing_model"
    assert [c.status for c in fake_openai.calls] == [401, 400, 400]


def test_fail_next_fails_exactly_n_authorised_calls(fake_openai):
    fake_openai.fail_next(2, status=503)
    assert _post(fake_openai, headers={}).status_code == 401  # not counted against the two
    statuses = [_post(fake_openai).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    fake_openai.fail_next(1, status=429)
    limited = _post(fake_openai)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"


def test_fail_rate_fails_that_share_of_calls(fake_openai):
    fake_openai.fail_rate = 1.0
    assert {_post(fake_openai).status_code for _ in range(3)} == {500}
    fake_openai.fail_rate = 0.3
    with httpx.Client() as client:
        statuses = [_post(fake_openai, client=client).status_code for _ in range(40)]
    assert 0 < statuses.count(500) < 40
    fake_openai.reset()
    assert fake_openai.call_count == 0
    assert _post(fake_openai).status_code == 200


def test_latency_slows_every_call(fake_openai):
    fake_openai.latency = 0.15
    started = time.perf_counter()
    _post(fake_openai)
    assert time.perf_counter() - started >= 0.15


def test_calls_from_many_threads_are_all_counted(fake_openai):
    def worker():
        with httpx.Client() as client:
            for _ in range(5):
                client.post(fake_openai.base_url + "/chat/completions", headers=GOOD, json=BODY)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake_openai.call_count == 40


def test_unknown_modes_and_rates_are_refused():
    fake = FakeOpenAI()
    with pytest.raises(ValueError, match="mode"):
        fake.mode = "slow"
    with pytest.raises(ValueError, match="fail_rate"):
        fake.fail_rate = 2
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.url


def test_the_fake_kakao_refuses_a_search_without_a_keyword(fake_kakao):
    response = httpx.get(
        fake_kakao.base_url + "/v2/local/search/keyword.json",
        headers={"Authorization": f"KakaoAK {fake_kakao.api_key}"},
        params={"x": "127", "y": "37.5"},
    )
    assert response.status_code == 400
    assert response.json()["errorType"] == "MissingParameter"
    assert httpx.get(fake_kakao.base_url + "/nope").status_code == 404


def test_a_stopped_fake_frees_its_port_and_can_run_again():
    fake = FakeKakao()
    with fake:
        first = fake.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(first + "/v2/user/me")
    with fake:
        response = httpx.get(fake.userinfo_url, headers={"Authorization": "Bearer test-user-token"})
        assert response.json()["id"] == 4242


def test_the_fake_runs_from_the_command_line():
    process = subprocess.Popen(
        [sys.executable, "-m", "growbin.fakes.openai_server", "--port", "0", "--latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("fake openai listening: base_url http://127.0.0.1:")
        base_url = line.split("base_url ")[1].split()[0]
        response = httpx.post(base_url + "/chat/completions", headers=GOOD, json=BODY)
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=5)
        process.stdout.close()
