"""`growbin deploy render k8s|compose`: writes, prints and checks the generated files."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from growbin.cli import build_app
from growbin.deploy.compose import render_compose
from growbin.deploy.k8s import render_k8s
from growbin.topology import loader

BROKEN = """\
version: 1
name: broken
exchanges:
  tasks: {type: direct}
queues:
  q.work:
    type: quorum
    priority: 10
    bindings: [{exchange: tasks, routing_key: work}]
routes:
  app.work: {exchange: tasks, routing_key: work}
profiles:
  work: {queues: [q.work]}
"""


def growbin(*args: str | Path) -> Result:
    return CliRunner().invoke(build_app(), [str(a) for a in args], env={"GROWBIN_TOPOLOGY": None})


def test_render_writes_the_files_and_check_finds_them_up_to_date_until_one_changes(tmp_path):
    written = growbin("-t", "production", "deploy", "render", "k8s", "--out", tmp_path)
    assert written.exit_code == 0, written.stderr
    expected = render_k8s(loader.load("production"))
    for name, text in expected.items():
        assert (tmp_path / name).read_text() == text
    assert growbin("deploy", "render", "k8s", "--out", tmp_path, "--check").exit_code == 0

    (tmp_path / "base" / "workers.yaml").write_text("# edited by hand\n")
    stale = growbin("deploy", "render", "k8s", "--out", tmp_path, "--check")
    assert stale.exit_code == 1
    assert "workers.yaml is not what the topology renders" in stale.stderr
    assert "growbin deploy render k8s --out" in stale.stderr


def test_render_prints_the_compose_file_of_another_preset():
    result = growbin("-t", "slo", "deploy", "render", "compose")
    assert result.exit_code == 0, result.stderr
    expected = render_compose(loader.load("slo"))
    assert expected["compose.yaml"] in result.stdout
    assert "# ==> compose.yaml <==" in result.stdout
    assert "worker-fast:" in result.stdout and "worker-ai:" not in result.stdout


def test_render_refuses_a_topology_with_lint_errors_and_writes_nothing(tmp_path):
    topology = tmp_path / "broken.yaml"
    topology.write_text(BROKEN)
    out = tmp_path / "out"
    result = growbin("-t", topology, "deploy", "render", "k8s", "--out", out)
    assert result.exit_code == 1
    assert "nothing was rendered" in result.stderr
    assert not out.exists()
