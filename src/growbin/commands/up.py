"""`growbin up`: the whole platform on one host, in the foreground, for trying the real thing.

It prepares what the processes refuse to start without (the database schema and the topology
on the broker URL's vhost, unless ``--no-prepare``), then starts the API, one worker per
profile and the beat as child processes with prefixed logs, waits until each is ready, and
on Ctrl-C or SIGTERM stops them all:

- each child runs in its own session, so the terminal's Ctrl-C reaches only `growbin up`,
  which sends SIGTERM to each child's main process: the API stops accepting and finishes its
  requests; a worker finishes the tasks it runs and returns what it only prefetched to the
  queue (Celery's warm shutdown; prefork children die on a SIGTERM of their own, so they get
  none); the beat stops scheduling;
- a child still running after its grace (a worker's: its longest task plus a margin, as in
  the deploy files) is killed with its whole process group. A second Ctrl-C kills at once.

Readiness: the API's ``/readyz`` answers 200, each worker's probe passes (its progress
record, as `growbin worker probe`); the beat has no readiness of its own, it is running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Annotated

import httpx
import typer

from growbin.commands.common import State, err, state_of
from growbin.commands.probe import default_hostname, probe_worker
from growbin.errors import ConfigError
from growbin.runtime.progress import progress_dir

API_GRACE = 30.0
BEAT_GRACE = 30.0
BEAT_SETTLE = 2.0  # seconds a beat must stay up to count as started
POLL = 0.5
TERM_EXITS = (-signal.SIGTERM, 128 + signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    grace: float
    ready: Callable[[], bool]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    pump: threading.Thread | None = None
    is_ready: bool = False
    stopped_by_us: bool = False
    outcome: str = field(default="")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Output:
    """Each child's lines, prefixed with its name, one line at a time."""

    COLORS = ("36", "33", "32", "35", "34", "91", "92", "93", "94", "95")

    def __init__(self, width: int, stream: IO[str] = sys.stdout) -> None:
        self.width = width
        self.stream = stream
        self.color = stream.isatty()
        self.lock = threading.Lock()
        self._assigned: dict[str, str] = {}

    def prefix(self, name: str) -> str:
        text = f"{name:>{self.width}} |"
        if not self.color:
            return text
        code = self._assigned.setdefault(name, self.COLORS[len(self._assigned) % len(self.COLORS)])
        return f"\033[{code}m{text}\033[0m"

    def line(self, name: str, text: str) -> None:
        with self.lock:
            self.stream.write(f"{self.prefix(name)} {text}\n")
            self.stream.flush()

    def say(self, text: str) -> None:
        self.line("up", text)

    def pump(self, child: Child) -> threading.Thread:
        assert child.proc is not None and child.proc.stdout is not None
        stdout = child.proc.stdout

        def run() -> None:
            for raw in iter(stdout.readline, b""):
                self.line(child.name, raw.decode("utf-8", "replace").rstrip("\n"))
            stdout.close()

        thread = threading.Thread(target=run, name=f"up-{child.name}", daemon=True)
        thread.start()
        return thread


def prepare(state: State, say: Callable[[str], None]) -> None:
    """`growbin db upgrade` and `growbin topology apply`, saying what each did."""
    from growbin.db.migrate import upgrade
    from growbin.errors import TopologyLintError
    from growbin.settings import mask_url
    from growbin.topology.broker_api import BrokerApi
    from growbin.topology.findings import Severity
    from growbin.topology.lint import lint
    from growbin.topology.plan import apply

    settings = state.settings
    url = mask_url(settings.database_url.get_secret_value())
    say(f"growbin db upgrade: {url} at revision {upgrade(settings)}")
    loaded = state.topology()
    with BrokerApi(settings.rabbitmq_api_url.get_secret_value()) as api:
        errors = [
            f
            for f in lint(loaded, rabbitmq_version=api.rabbitmq_version())
            if f.severity is Severity.ERROR
        ]
        if errors:
            raise TopologyLintError(
                f"topology {loaded.source} has lint errors; fix them (`growbin topology lint`) "
                "before `growbin up`:\n  " + "\n  ".join(str(f) for f in errors),
                findings=list(errors),
            )
        result = apply(loaded.topology, api)
    say(
        f"growbin topology apply: {loaded.topology.name!r} on vhost {loaded.topology.vhost!r}: "
        f"{result.summary()}"
    )


def plan_children(
    state: State, *, host: str, port: int, profiles: list[str], beat: bool
) -> list[Child]:
    from growbin.deploy.profiles import profile_deploys

    settings = state.settings
    loaded = state.topology_file()
    deploys = {d.name: d for d in profile_deploys(loaded)}
    unknown = [p for p in profiles if p not in deploys]
    if unknown:
        raise ConfigError(
            f"unknown worker profile(s) {', '.join(unknown)} in topology "
            f"{loaded.topology.name!r}: choose among {', '.join(deploys)}"
        )
    chosen = [deploys[p] for p in profiles] if profiles else list(deploys.values())
    growbin = [sys.executable, "-m", "growbin.cli", "--topology", settings.topology]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104

    def api_ready() -> bool:
        try:
            return httpx.get(f"{base_url}/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    children = [
        Child(
            "api",
            [*growbin, "api", "--host", host, "--port", str(port)],
            env,
            API_GRACE,
            api_ready,
        )
    ]
    directory = progress_dir(settings.worker_progress_dir)
    metrics_base = settings.metrics.port
    for index, deploy in enumerate(chosen):
        hostname = default_hostname(deploy.name)

        def worker_ready(hostname: str = hostname) -> bool:
            return probe_worker(directory, hostname, max_age=15.0)[1].ok

        worker_env = dict(env)
        if metrics_base > 0:  # one /metrics port per worker on this host
            worker_env["GROWBIN_METRICS_PORT"] = str(metrics_base + index)
        children.append(
            Child(
                f"worker-{deploy.name}",
                [*growbin, "worker", "--profile", deploy.name, "--hostname", hostname],
                worker_env,
                float(deploy.grace_seconds),
                worker_ready,
            )
        )
    if beat:
        beat_child = Child("beat", [*growbin, "beat"], env, BEAT_GRACE, lambda: False)
        beat_child.ready = lambda: time.monotonic() - beat_child.started_at >= BEAT_SETTLE
        children.append(beat_child)
    return children


class Supervisor:
    """Starts the children, watches them, and stops them on a signal or a child's exit."""

    def __init__(self, children: list[Child], output: Output) -> None:
        self.children = children
        self.output = output
        self.stop_requested = threading.Event()
        self.kill_now = threading.Event()
        self.signal_name = ""

    def on_signal(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.stop_requested.is_set():
            self.output.say(f"{name} again: killing every child now")
            self.kill_now.set()
            return
        self.signal_name = name
        self.stop_requested.set()

    def start(self) -> None:
        for child in self.children:
            child.proc = subprocess.Popen(
                child.argv,
                env=child.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the terminal's Ctrl-C is ours to forward
            )
            child.started_at = time.monotonic()
            child.pump = self.output.pump(child)
            self.output.say(f"started {child.name} (pid {child.proc.pid})")

    def exited(self) -> Child | None:
        return next((c for c in self.children if not c.running and not c.stopped_by_us), None)

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.stop_requested.is_set():
            if self.exited() is not None:
                return False
            for child in self.children:
                if not child.is_ready and child.ready():
                    child.is_ready = True
                    took = time.monotonic() - child.started_at
                    self.output.say(f"{child.name} is ready ({took:.1f} s)")
            if all(c.is_ready for c in self.children):
                return True
            if time.monotonic() > deadline:
                waiting = ", ".join(c.name for c in self.children if not c.is_ready)
                self.output.say(f"not ready after {timeout:g} s: {waiting}")
                return False
            self.stop_requested.wait(POLL)
        return False

    def watch(self) -> Child | None:
        """Until a signal (None) or a child's own exit (that child)."""
        while not self.stop_requested.wait(POLL):
            child = self.exited()
            if child is not None:
                return child
        return None

    def stop(self) -> bool:
        """SIGTERM every main process, wait up to each grace, then kill; True if all clean."""
        started = time.monotonic()
        for child in self.children:
            child.stopped_by_us = True
            if child.running:
                assert child.proc is not None
                child.proc.send_signal(signal.SIGTERM)
        clean = True
        pending = [c for c in self.children if c.proc is not None]
        while pending:
            for child in list(pending):
                assert child.proc is not None
                code = child.proc.poll()
                waited = time.monotonic() - started
                if code is not None:
                    self._reap_group(child)
                    # uvicorn exits by re-raising the SIGTERM it handled: a clean stop too
                    how = "SIGTERM" if code in TERM_EXITS else f"exit {code}"
                    self.output.say(f"{child.name} stopped ({how}) after {waited:.1f} s")
                    clean = clean and (code == 0 or code in TERM_EXITS)
                    pending.remove(child)
                elif self.kill_now.is_set() or waited > child.grace:
                    why = "on request" if self.kill_now.is_set() else f"after {child.grace:g} s"
                    self.output.say(f"{child.name} killed {why} (its grace)")
                    self._kill_group(child)
                    child.proc.wait()
                    clean = False
                    pending.remove(child)
            time.sleep(0.1)
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=5)
        return clean

    @staticmethod
    def _kill_group(child: Child) -> None:
        assert child.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGKILL)

    def _reap_group(self, child: Child) -> None:
        # a main process that exited may leave pool children behind: none may outlive `up`
        assert child.proc is not None
        try:
            os.killpg(child.proc.pid, 0)
        except ProcessLookupError:
            return
        self.output.say(f"{child.name}: processes left in its group; killing them")
        self._kill_group(child)


def up(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on.")] = 8001,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", "-p", help="Run only these worker profiles (repeatable)."),
    ] = None,
    beat: Annotated[bool, typer.Option("--beat/--no-beat", help="Run the beat.")] = True,
    do_prepare: Annotated[
        bool,
        typer.Option(
            "--prepare/--no-prepare",
            help="Run `growbin db upgrade` and `growbin topology apply` first (default).",
        ),
    ] = True,
    ready_timeout: Annotated[
        float, typer.Option(help="Seconds to wait until every process is ready.")
    ] = 180.0,
) -> None:
    """Run the API, one worker per profile and the beat here, in the foreground.

    Prepares the database and the topology first (--no-prepare to skip), prefixes each
    process's log lines with its name, and stops them all cleanly on Ctrl-C or SIGTERM.
    """
    state = state_of(ctx)
    children = plan_children(state, host=host, port=port, profiles=profile or [], beat=beat)
    output = Output(width=max(len(c.name) for c in [*children, Child("up", [], {}, 0, bool)]))
    if do_prepare:
        prepare(state, output.say)
    else:
        output.say(
            "--no-prepare: database and topology left as they are (workers, beat and the API "
            "refuse a vhost where the topology is not applied)"
        )
    supervisor = Supervisor(children, output)
    previous = {
        sig: signal.signal(sig, supervisor.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    failed: Child | None = None
    try:
        supervisor.start()
        if supervisor.wait_ready(ready_timeout):
            names = ", ".join(c.name for c in children)
            output.say(f"ready: {names}; API on http://{host}:{port} (Ctrl-C stops everything)")
            failed = supervisor.watch()
        else:
            # a child that exited, or else (unless we were told to stop) one never ready
            failed = supervisor.exited()
            if failed is None and not supervisor.stop_requested.is_set():
                failed = next(c for c in children if not c.is_ready)
    finally:
        if failed is not None:
            code = failed.proc.poll() if failed.proc is not None else None
            state_text = f"exited with {code}" if code is not None else "is not ready"
            output.say(f"{failed.name} {state_text}; stopping the others")
        elif supervisor.signal_name:
            output.say(f"{supervisor.signal_name}: stopping every process")
        clean = supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed is not None:
        err.print(f"growbin up: {failed.name} failed; see its lines above", highlight=False)
        raise typer.Exit(1)
    output.say("all stopped" + ("" if clean else "; some did not exit cleanly (see above)"))
    if not clean:
        raise typer.Exit(1)
