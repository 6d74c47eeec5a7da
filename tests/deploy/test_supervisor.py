"""deploy/supervisor/growbin.conf: what the generator writes, and a file supervisor accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from growbin.deploy.profiles import profile_deploys
from growbin.deploy.supervisor import (
    SupervisorOptions,
    render_supervisor,
    render_supervisor_files,
)
from growbin.topology import loader

COMMITTED = Path(__file__).resolve().parents[2] / "deploy" / "supervisor"


def test_the_committed_supervisor_config_is_what_the_generator_writes():
    for name, text in render_supervisor_files(loader.load("production")).items():
        assert (COMMITTED / name).read_text() == text, (
            f"deploy/supervisor/{name} is stale: run "
            "`growbin -t production deploy render supervisor --out deploy/supervisor`"
        )


@pytest.mark.parametrize("preset", ["production", "slo", "pipeline"])
def test_supervisor_reads_one_program_per_profile_with_its_grace(preset, tmp_path):
    options_module = pytest.importorskip("supervisor.options")
    loaded = loader.load(preset)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        "[supervisord]\n"
        f"logfile={tmp_path}/supervisord.log\n"
        f"pidfile={tmp_path}/supervisord.pid\n"
        f"[include]\nfiles={tmp_path}/growbin.conf\n"
    )
    # supervisor checks that the log directory exists
    local = SupervisorOptions(log_dir=str(tmp_path), directory=str(tmp_path))
    (tmp_path / "growbin.conf").write_text(render_supervisor(loaded, local))

    options = options_module.ServerOptions()
    options.configfile = str(conf)
    options.process_config(do_usage=False)

    (group,) = options.process_group_configs
    programs = {p.name: p for p in group.process_configs}
    deploys = profile_deploys(loaded)
    assert set(programs) == {
        "growbin-api",
        "growbin-beat",
        *(f"growbin-worker-{d.name}" for d in deploys),
    }
    for deploy in deploys:
        worker = programs[f"growbin-worker-{deploy.name}"]
        assert worker.command == f"growbin --topology {preset} worker --profile {deploy.name}"
        assert worker.stopwaitsecs == deploy.grace_seconds > deploy.longest_task
        # SIGTERM to the main process (prefork children would die mid-task), SIGKILL to all
        assert not worker.stopasgroup and worker.killasgroup
    workers = [programs[f"growbin-worker-{d.name}"] for d in deploys]
    ports = [w.environment["GROWBIN_METRICS_PORT"] for w in workers]
    assert len(set(ports)) == len(ports)
    assert "GROWBIN_BROKER_URL" not in render_supervisor(loaded)  # secrets stay out
