"""Keys: 401 without a good one, 403 without the admin scope, and the apikey commands."""

from __future__ import annotations

import json

import pytest
from tests.integration.api.conftest import API_SECRET
from typer.testing import CliRunner

from growbin.api.commands import apikey_app

pytestmark = pytest.mark.integration

SCAN_ENDPOINTS = [
    ("GET", "/v1/scans"),
    ("POST", "/v1/scans"),
    ("GET", f"/v1/scans/{'a' * 32}"),
    ("GET", f"/v1/scans/{'a' * 32}/events"),
    ("GET", "/solo/add"),
    ("GET", "/solo/chain"),
    ("GET", "/solo/group"),
    ("GET", "/result/0123"),
    ("GET", "/result/group/0123"),
]
ADMIN_ENDPOINTS = [
    ("GET", "/v1/admin/queues"),
    ("GET", "/v1/admin/dlq"),
    ("GET", "/v1/admin/dlq/abcdef123456"),
    ("POST", "/v1/admin/dlq/replay"),
]


def cli(api, *args: str):
    env = {
        "GROWBIN_ENV": "test",
        "GROWBIN_DATABASE_URL": api.settings.database_url.get_secret_value(),
        "GROWBIN_API_SECRET": API_SECRET,
    }
    result = CliRunner().invoke(apikey_app, list(args), env=env, catch_exceptions=False)
    return result


def test_no_key_a_wrong_key_and_a_revoked_key_are_401_with_a_bearer_challenge(api):
    good = api.key("erin")
    _, prefix, secret = good.split("_", 2)
    revoked_key = api.key("erin")
    assert cli(api, "revoke", revoked_key.split("_")[1]).exit_code == 0
    callers = {
        "no key": api.client(),
        "not bearer": api.client(headers={"Authorization": f"Basic {good}"}),
        "malformed": api.client("not-a-key"),
        "wrong secret": api.client(f"gb_{prefix}_{'x' * len(secret)}"),
        "revoked": api.client(revoked_key),
    }
    for who, client in callers.items():
        for method, path in SCAN_ENDPOINTS + ADMIN_ENDPOINTS:
            answer = client.request(method, path)
            assert answer.status_code == 401, (who, method, path, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer"), (who, path)
            assert answer.json()["error"] == "unauthorized"
    assert api.client(good).get("/v1/scans").status_code == 200


def test_no_admin_endpoint_answers_a_key_without_the_admin_scope(api):
    user = api.client(api.key("frank"))
    for method, path in ADMIN_ENDPOINTS:
        answer = user.request(method, path, json={"ids": ["abcdef123456"]})
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"] == "forbidden"


def test_the_admin_queue_overview_shows_every_queue_of_the_topology(api):
    admin = api.client(api.key("root", "admin"))
    answer = admin.get("/v1/admin/queues")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    names = [q["name"] for q in body["queues"]]
    assert names == list(api.runtime.topology.queues)
    user_input = body["queues"][0]
    assert user_input["exists"] is True
    assert user_input["type"] == "quorum"
    assert set(user_input) >= {"messages", "consumers", "publish_rate", "deliver_rate"}
    # an admin key may also use the scan endpoints (admin includes scans)
    assert admin.get("/v1/scans").status_code == 200


def test_apikey_create_prints_the_key_once_and_list_never_shows_it(api):
    created = cli(api, "create", "--owner", "grace", "--name", "laptop", "--format", "json")
    assert created.exit_code == 0, created.output
    made = json.loads(created.output)
    key = made["key"]
    assert key.startswith(f"gb_{made['prefix']}_")
    assert made["scopes"] == ["scans"]

    listed = cli(api, "list", "--owner", "grace", "--format", "json")
    rows = json.loads(listed.output)
    assert [r["prefix"] for r in rows] == [made["prefix"]]
    assert key.split("_", 2)[2] not in listed.output
    assert api.client(key).get("/v1/scans").status_code == 200

    table = cli(api, "list", "--owner", "grace")
    assert made["prefix"] in table.output and key not in table.output

    admin = cli(api, "create", "--owner", "grace", "--name", "ops", "--scope", "admin")
    assert admin.exit_code == 0
    admin_key = next(w for w in admin.output.split() if w.startswith("gb_"))
    assert api.client(admin_key).get("/v1/admin/queues").status_code == 200

    assert cli(api, "revoke", made["prefix"]).exit_code == 0
    assert api.client(key).get("/v1/scans").status_code == 401
    active = json.loads(cli(api, "list", "--owner", "grace", "--active", "--format", "json").output)
    assert [r["name"] for r in active] == ["ops"]


def test_apikey_create_refuses_an_unknown_scope_naming_the_known_ones(api):
    from growbin.api.keys import ApiKeyError

    with pytest.raises(ApiKeyError, match="scans or admin"):
        cli(api, "create", "--owner", "heidi", "--name", "x", "--scope", "root")
