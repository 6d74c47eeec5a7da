"""deploy/alertmanager: the alerts reach Slack by severity, the webhook URL stays a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.deploy.tools import DEPLOY, run, tool

CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
APT_PACKAGE = "prometheus-alertmanager"


def amtool() -> str:
    return tool("amtool", f"apt-get install -y {APT_PACKAGE}; scripts/services.sh does it")


def receiver_for(config: Path, *labels: str) -> str:
    result = run(amtool(), "config", "routes", "test", f"--config.file={config}", *labels)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_amtool_accepts_the_config():
    result = run(amtool(), "check-config", CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "2 receivers" in result.stdout


def test_amtool_refuses_slack_receivers_without_a_webhook_url(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    del config["global"]["slack_api_url_file"]
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(yaml.safe_dump(config))
    result = run(amtool(), "check-config", broken)
    assert result.returncode != 0
    assert "slack" in (result.stdout + result.stderr).lower()


@pytest.mark.parametrize(
    ("severity", "receiver"), [("critical", "slack-critical"), ("warning", "slack-warning")]
)
def test_alerts_are_routed_to_slack_by_severity(severity, receiver):
    assert receiver_for(CONFIG, f"severity={severity}", "alertname=QueueBacklog") == receiver


def test_every_severity_the_rules_use_reaches_a_slack_receiver():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    severities = {r["labels"]["severity"] for g in rules["groups"] for r in g["rules"]}
    assert severities == {"critical", "warning"}
    receivers = {r["name"]: r for r in yaml.safe_load(CONFIG.read_text())["receivers"]}
    for severity in severities:
        name = receiver_for(CONFIG, f"severity={severity}")
        assert receivers[name]["slack_configs"], name


def test_the_webhook_url_is_read_from_a_secret_file_never_written_in_the_config():
    config = yaml.safe_load(CONFIG.read_text())
    assert config["global"]["slack_api_url_file"] == "/run/secrets/slack_api_url"
    text = CONFIG.read_text()
    assert "hooks.slack.com" not in text
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert "api_url" not in slack, receiver["name"]


def test_prometheus_sends_its_alerts_to_this_alertmanager():
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = [
        t for a in prometheus["alerting"]["alertmanagers"] for s in a["static_configs"]
        for t in s["targets"]
    ]  # fmt: skip
    assert targets == ["alertmanager:9093"]
