from pathlib import Path

import pytest

from growbin.errors import ConfigError
from growbin.topology import loader
from growbin.topology.findings import Finding, Severity
from growbin.topology.lint import CODES, lint, parse_version

SEEDS = Path(__file__).parents[2] / "fixtures" / "seeds"
VERSIONS = ("3.10.8", "3.13", "4.1")

# Every check passes on this one; each test breaks one thing in it.
CLEAN = """\
name: t
exchanges:
  tasks: {type: topic, alternate_exchange: unroutable}
  dlx: {type: direct}
  unroutable: {type: fanout}
queues:
  q.work:
    type: quorum
    bindings: [{exchange: tasks, routing_key: "work.#"}]
    message_ttl: 600
    max_length: 100
    overflow: reject-publish
    dead_letter_exchange: dlx
    dead_letter_routing_key: dlq
    dead_letter_strategy: at-least-once
    delivery_limit: 5
    alert_depth: 50
  q.dlq:
    role: dead-letter
    bindings: [{exchange: dlx, routing_key: dlq}]
    max_length: 1000
    overflow: reject-publish
    alert_depth: 10
  q.unroutable:
    role: unroutable
    bindings: [{exchange: unroutable}]
    max_length: 1000
    overflow: reject-publish
    alert_depth: 1
routes:
  growbin.scan.classify: {exchange: tasks, routing_key: work.classify}
profiles:
  worker:
    queues: [q.work]
    time_limit: 60
schedule:
  nightly: {task: growbin.scan.classify, cron: "0 2 * * *"}
"""

ROUTE = "growbin.scan.classify: {exchange: tasks, routing_key: work.classify}"


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once"
    return text.replace(old, new)


def run(text: str, version: str = "3.13") -> list[Finding]:
    return lint(loader.parse(text, source="t.yaml"), version)


def with_code(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def only(findings: list[Finding], code: str) -> Finding:
    found = with_code(findings, code)
    assert len(found) == 1, f"expected one {code}, got {[str(f) for f in findings]}"
    return found[0]


def line_of(text: str, needle: str) -> str:
    """``t.yaml:N`` of the first line containing ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return f"t.yaml:{number}"
    raise AssertionError(f"{needle!r} is not in the text")


# --- presets and seeds ------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("preset", loader.PRESETS)
def test_every_preset_has_no_errors(preset, version):
    errors = [str(f) for f in lint(loader.load(preset), version) if f.severity is Severity.ERROR]
    assert errors == []


@pytest.mark.parametrize("version", VERSIONS)
def test_the_clean_topology_has_no_findings(version):
    assert [str(f) for f in run(CLEAN, version)] == []


@pytest.mark.parametrize("seed", ["seed_000.yaml", "seed_001.yaml"])
def test_seeds_000_and_001_declare_q_ai_as_a_quorum_queue_with_priority(seed):
    path = SEEDS / seed
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    q_ai = lines.index("  q.ai:")
    priority_line = next(i for i in range(q_ai, len(lines)) if lines[i] == "    priority: 10")

    finding = only(lint(loader.load(str(path)), "3.13"), "GB101")

    assert finding.severity is Severity.ERROR
    assert finding.location == f"{path}:{priority_line + 1}"
    assert "'q.ai'" in finding.message
    assert "406 PRECONDITION_FAILED" in finding.message


@pytest.mark.parametrize("seed", ["seed_000.yaml", "seed_001.yaml"])
def test_the_seeds_api_and_sched_bindings_miss_routing_keys_of_three_words(seed):
    findings = lint(loader.load(str(SEEDS / seed)), "3.13")
    unrouted = {f.message.split("'")[1] for f in with_code(findings, "GB202")}
    assert unrouted == {"growbin.jobs.map_search", "growbin.jobs.images_cleanup"}


def test_seed_002_defects_are_found():
    findings = lint(loader.load(str(SEEDS / "seed_002.yaml")), "3.13")
    assert "'q.sched'" in only(findings, "GB113").message
    assert "'fast'" in only(findings, "GB304").message
    assert "'growbin.jobs.analytics_save'" in only(findings, "GB207").message
    assert not [f for f in findings if f.severity is Severity.ERROR]


def test_seed_004_schedules_unrouted_tasks_and_has_no_dead_letters_or_limits():
    findings = lint(loader.load(str(SEEDS / "seed_004.yaml")), "3.13")
    assert len(with_code(findings, "GB501")) == 4
    assert len(with_code(findings, "GB404")) == 4
    assert len(with_code(findings, "GB112")) == 4
    assert only(findings, "GB306").severity is Severity.INFO


@pytest.mark.parametrize(
    "seed", ["seed_000.yaml", "seed_001.yaml", "seed_002.yaml", "seed_004.yaml"]
)
def test_every_finding_has_a_documented_code_and_a_line(seed):
    for finding in lint(loader.load(str(SEEDS / seed)), "3.10.8"):
        assert finding.code in CODES
        assert finding.location.rpartition(":")[2].isdigit(), finding


def test_findings_are_sorted_errors_then_warnings_then_info():
    findings = lint(loader.load(str(SEEDS / "seed_000.yaml")), "3.13")
    ranks = [(Severity.ERROR, Severity.WARNING, Severity.INFO).index(f.severity) for f in findings]
    assert ranks == sorted(ranks)
    assert {0, 1, 2} <= set(ranks)


# --- versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3.10.8", (3, 10, 8)), ("4.0", (4, 0, 0)), ("4.3.1", (4, 3, 1)), (" 3.13 ", (3, 13, 0))],
)
def test_rabbitmq_versions_parse_into_tuples(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("bad", ["", "4", "four", "3.13-management", "4.x"])
def test_a_malformed_rabbitmq_version_is_a_config_error_naming_it(bad):
    with pytest.raises(ConfigError, match=repr(bad)):
        run(CLEAN, bad)


# --- queue arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "fix"),
    [
        ("3.10.8", "quorum queues have no priorities"),
        ("3.13", "or split into separate queues"),
        ("4.0", "two levels (0-4 normal, 5+ high)"),
        ("4.2.3", "two levels"),
        ("4.3", "32 message priority levels"),
    ],
)
def test_quorum_queue_with_priority_is_an_error_on_every_version(version, fix):
    text = edit(CLEAN, "    type: quorum\n", "    type: quorum\n    priority: 10\n")
    finding = only(run(text, version), "GB101")
    assert finding.severity is Severity.ERROR
    assert finding.location == line_of(text, "priority: 10")
    assert fix in finding.message
    assert f"RabbitMQ {version}" in finding.message


def test_classic_queue_with_priority_is_fine_up_to_ten():
    text = edit(CLEAN, "    type: quorum\n", "    type: classic\n    priority: 10\n")
    text = edit(text, "    dead_letter_strategy: at-least-once\n", "")
    text = edit(text, "    delivery_limit: 5\n", "")
    # no quorum queue left: only the note that countdowns wait in the worker
    assert [f.code for f in run(text)] == ["GB115"]
    assert only(run(edit(text, "priority: 10", "priority: 50")), "GB107").severity is Severity.INFO


def test_quorum_queue_with_reject_publish_dlx_is_an_error():
    text = edit(
        CLEAN,
        "reject-publish\n    dead_letter_exchange",
        "reject-publish-dlx\n    dead_letter_exchange",
    )
    finding = only(run(text), "GB102")
    assert finding.severity is Severity.ERROR
    assert finding.location == line_of(text, "reject-publish-dlx")
    assert "drop-head" in finding.message


def test_at_least_once_without_a_dead_letter_exchange_silently_falls_back():
    text = edit(CLEAN, "    dead_letter_exchange: dlx\n    dead_letter_routing_key: dlq\n", "")
    finding = only(run(text), "GB103")
    assert finding.severity is Severity.ERROR
    assert "no dead_letter_exchange" in finding.message
    assert finding.location == line_of(text, "dead_letter_strategy")


def test_at_least_once_without_reject_publish_silently_falls_back():
    text = edit(
        CLEAN, "reject-publish\n    dead_letter_exchange", "drop-head\n    dead_letter_exchange"
    )
    finding = only(run(text), "GB103")
    assert "overflow drop-head" in finding.message


def test_at_least_once_on_a_classic_queue_is_a_warning():
    text = edit(CLEAN, "    type: quorum\n", "    type: classic\n")
    text = edit(text, "    delivery_limit: 5\n", "")
    finding = only(run(text), "GB104")
    assert finding.severity is Severity.WARNING
    assert not with_code(run(text), "GB103")


@pytest.mark.parametrize(
    ("version", "severity"),
    [
        ("3.10.8", Severity.ERROR),
        ("3.13.7", Severity.ERROR),
        ("4.0", Severity.INFO),
        ("4.1", Severity.INFO),
    ],
)
def test_quorum_queue_without_delivery_limit_depends_on_the_version(version, severity):
    text = edit(CLEAN, "    delivery_limit: 5\n", "")
    finding = only(run(text, version), "GB105")
    assert finding.severity is severity
    assert finding.location == line_of(text, "q.work:")
    assert ("defaults it to 20" in finding.message) is (severity is Severity.INFO)


def test_delivery_limit_on_a_classic_queue_is_ignored_by_rabbitmq():
    text = edit(CLEAN, "    type: quorum\n", "    type: classic\n")
    text = edit(text, "    dead_letter_strategy: at-least-once\n", "")
    assert only(run(text), "GB106").location == line_of(text, "delivery_limit")


# --- limits ------------------------------------------------------------------------------------


def test_max_length_zero_is_an_error():
    text = edit(CLEAN, "max_length: 100\n", "max_length: 0\n")
    finding = only(run(text), "GB110")
    assert finding.severity is Severity.ERROR
    assert finding.location == line_of(text, "max_length: 0")


def test_work_queue_without_ttl_is_info_and_without_max_length_is_a_warning():
    text = edit(CLEAN, "    message_ttl: 600\n    max_length: 100\n", "")
    findings = run(text)
    assert only(findings, "GB111").severity is Severity.INFO
    assert only(findings, "GB112").severity is Severity.WARNING
    assert not with_code(findings, "GB113")


@pytest.mark.parametrize("overflow", ["    overflow: drop-head\n", ""])
def test_work_queue_that_drops_the_oldest_task_is_a_warning(overflow):
    text = edit(CLEAN, "overflow: reject-publish\n    dead_letter_exchange", "dead_letter_exchange")
    text = edit(text, "    dead_letter_strategy: at-least-once\n", overflow)
    finding = only(run(text), "GB113")
    assert finding.severity is Severity.WARNING
    assert "reject-publish" in finding.message


def test_ttl_not_longer_than_the_profile_time_limit_is_a_warning():
    text = edit(CLEAN, "message_ttl: 600", "message_ttl: 60")
    finding = only(run(text), "GB114")
    assert finding.severity is Severity.WARNING
    assert finding.location == line_of(text, "message_ttl: 60")
    assert "60s time limit of 'growbin.scan.classify'" in finding.message


def test_the_route_time_limit_wins_over_the_profile_for_the_ttl_check():
    shorter = edit(
        CLEAN, "routing_key: work.classify}", "routing_key: work.classify, time_limit: 30}"
    )
    assert not with_code(run(edit(shorter, "message_ttl: 600", "message_ttl: 45")), "GB114")
    longer = edit(
        CLEAN, "routing_key: work.classify}", "routing_key: work.classify, time_limit: 900}"
    )
    assert "900s" in only(run(longer), "GB114").message


# --- routing -----------------------------------------------------------------------------------


def test_route_to_an_unknown_exchange_is_an_error_with_a_suggestion():
    text = edit(CLEAN, ROUTE, ROUTE.replace("tasks", "taks"))
    finding = only(run(text), "GB201")
    assert finding.severity is Severity.ERROR
    assert "did you mean 'tasks'?" in finding.message


def test_route_whose_key_reaches_no_queue_is_an_error_even_with_an_alternate_exchange():
    text = edit(CLEAN, "routing_key: work.classify}", "routing_key: wrk.classify}")
    finding = only(run(text), "GB202")
    assert finding.severity is Severity.ERROR
    assert finding.location == line_of(text, "wrk.classify")
    assert "'wrk.classify'" in finding.message
    assert "unroutable queue" in finding.message
    no_ae = edit(text, "{type: topic, alternate_exchange: unroutable}", "{type: topic}")
    assert "dropped by RabbitMQ" in only(run(no_ae), "GB202").message


def test_route_reaching_two_queues_runs_the_task_twice():
    also_classify = (
        '{exchange: dlx, routing_key: dlq}, {exchange: tasks, routing_key: "#.classify"}'
    )
    text = edit(CLEAN, "{exchange: dlx, routing_key: dlq}", also_classify)
    finding = only(run(text), "GB203")
    assert finding.severity is Severity.ERROR
    assert "q.work, q.dlq" in finding.message


def test_route_into_a_dead_letter_queue_is_a_warning():
    text = edit(CLEAN, ROUTE, f"{ROUTE}\n  growbin.x: {{exchange: dlx, routing_key: dlq}}")
    finding = only(run(text), "GB204")
    assert finding.severity is Severity.WARNING
    assert "dead-letter queue 'q.dlq'" in finding.message


DIRECT = edit(
    edit(
        CLEAN, "tasks: {type: topic, alternate_exchange", "tasks: {type: direct, alternate_exchange"
    ),
    '"work.#"',
    '"work.classify"',
)


def test_countdowns_through_a_direct_exchange_are_fine_because_they_take_the_delay_exchange():
    # the retired GB205/GB206: countdowns no longer pass the route's exchange at all
    text = edit(
        DIRECT, "routing_key: work.classify}", "routing_key: work.classify, uses_eta: true}"
    )
    assert run(text) == []


def test_declaring_the_delay_exchange_in_the_file_is_an_error():
    text = edit(
        CLEAN,
        "  dlx: {type: direct}\n",
        "  dlx: {type: direct}\n  growbin.delayed: {type: topic}\n",
    )
    finding = only(run(text), "GB216")
    assert finding.severity is Severity.ERROR
    assert finding.location == line_of(text, "growbin.delayed")
    assert "rename your exchange" in finding.message


def test_a_queue_name_ending_in_another_queues_name_is_an_error():
    # "#.work" on the delay exchange would also take a delayed message for "q.work"
    text = edit(
        CLEAN,
        "  q.dlq:\n",
        "  work:\n    role: dead-letter\n    max_length: 10\n    alert_depth: 1\n  q.dlq:\n",
    )
    finding = only(run(text), "GB217")
    assert finding.severity is Severity.ERROR
    assert "'q.work'" in finding.message and "'#.work'" in finding.message


def test_no_quorum_queue_means_countdowns_wait_in_the_worker():
    classic = edit(CLEAN, "    type: quorum\n", "    type: classic\n")
    classic = edit(classic, "    dead_letter_strategy: at-least-once\n    delivery_limit: 5\n", "")
    finding = only(run(classic), "GB115")
    assert finding.severity is Severity.INFO
    assert "'growbin.scan.classify'" in finding.message and "type: quorum" in finding.message
    no_retries = edit(classic, "time_limit: 60", "time_limit: 60\n    retry: {max_retries: 0}")
    assert not with_code(run(no_retries), "GB115")
    eta = edit(no_retries, "work.classify}", "work.classify, uses_eta: true}")
    assert only(run(eta), "GB115")


def test_route_priority_on_a_classic_queue_without_priority_is_ignored():
    text = edit(CLEAN, "    type: quorum\n", "    type: classic\n")
    text = edit(text, "    dead_letter_strategy: at-least-once\n    delivery_limit: 5\n", "")
    text = edit(text, "routing_key: work.classify}", "routing_key: work.classify, priority: 5}")
    assert only(run(text), "GB207").severity is Severity.WARNING
    capped = edit(text, "    type: classic\n", "    type: classic\n    priority: 3\n")
    assert "treats it as 3" in only(run(capped), "GB208").message


def test_route_priority_on_a_quorum_queue_is_ignored_only_before_4_0():
    text = edit(CLEAN, "routing_key: work.classify}", "routing_key: work.classify, priority: 5}")
    finding = only(run(text, "3.13"), "GB209")
    assert finding.severity is Severity.INFO
    assert "'growbin.scan.classify' (5)" in finding.message
    assert not with_code(run(text, "4.0"), "GB209")


def test_route_through_a_headers_exchange_cannot_be_checked():
    text = edit(CLEAN, "  dlx: {type: direct}\n", "  dlx: {type: direct}\n  hdr: {type: headers}\n")
    text = edit(text, ROUTE, f"{ROUTE}\n  growbin.h: {{exchange: hdr, routing_key: x}}")
    findings = run(text)
    assert only(findings, "GB210").severity is Severity.INFO
    assert not with_code(findings, "GB202")


def test_binding_to_an_unknown_exchange_is_an_error():
    text = edit(CLEAN, "{exchange: dlx, routing_key: dlq}", "{exchange: dxl, routing_key: dlq}")
    finding = only(run(text), "GB211")
    assert finding.severity is Severity.ERROR
    assert finding.location == line_of(text, "dxl")
    assert "did you mean 'dlx'?" in finding.message


def test_unknown_alternate_exchange_is_an_error():
    text = edit(CLEAN, "alternate_exchange: unroutable}", "alternate_exchange: lost}")
    finding = only(run(text), "GB212")
    assert finding.severity is Severity.ERROR
    assert "'lost'" in finding.message


def test_alternate_exchange_with_no_queue_is_a_warning():
    text = edit(CLEAN, "    bindings: [{exchange: unroutable}]\n", "")
    assert only(run(text), "GB213").severity is Severity.WARNING


def test_exchange_receiving_routes_without_alternate_exchange_is_a_warning():
    text = edit(CLEAN, "{type: topic, alternate_exchange: unroutable}", "{type: topic}")
    finding = only(run(text), "GB214")
    assert finding.severity is Severity.WARNING
    assert finding.location == line_of(text, "tasks: {type: topic}")


def test_wildcard_binding_on_a_direct_exchange_is_a_warning():
    text = edit(CLEAN, "{exchange: dlx, routing_key: dlq}", "{exchange: dlx, routing_key: dlq.*}")
    text = edit(text, "dead_letter_routing_key: dlq", "dead_letter_routing_key: dlq.*")
    assert only(run(text), "GB215").severity is Severity.WARNING


# --- worker profiles ---------------------------------------------------------------------------


def test_profile_naming_an_unknown_queue_is_an_error_with_a_suggestion():
    text = edit(CLEAN, "queues: [q.work]", "queues: [q.work, q.wrok]")
    finding = only(run(text), "GB301")
    assert finding.severity is Severity.ERROR
    assert "did you mean 'q.work'?" in finding.message
    assert finding.location == line_of(text, "q.wrok")


def test_work_queue_without_a_consumer_is_a_warning():
    text = edit(CLEAN, "queues: [q.work]", "queues: [q.other]")
    other = "  q.other:\n    max_length: 1\n    overflow: reject-publish\n    message_ttl: 100\n"
    text = edit(text, "  q.dlq:\n", f"{other}    dead_letter_exchange: dlx\n  q.dlq:\n")
    finding = only(run(text), "GB302")
    assert finding.severity is Severity.WARNING
    assert "'q.work'" in finding.message


def test_profile_consuming_the_dead_letter_queue_is_a_warning():
    text = edit(CLEAN, "queues: [q.work]", "queues: [q.work, q.dlq]")
    assert only(run(text), "GB303").severity is Severity.WARNING


def test_profile_with_early_acks_loses_tasks():
    text = edit(CLEAN, "    time_limit: 60\n", "    time_limit: 60\n    acks_late: false\n")
    finding = only(run(text), "GB304")
    assert finding.severity is Severity.WARNING
    assert finding.location == line_of(text, "acks_late")
    # the profile's choice is honoured (tests/unit/runtime/test_celery_app.py): say what it costs
    assert "ack each task when they receive it" in finding.message
    assert "still dead-lettered" in finding.message


def test_prefetch_above_one_with_long_tasks_is_info():
    text = edit(CLEAN, "    time_limit: 60\n", "    time_limit: 300\n    prefetch_multiplier: 4\n")
    text = edit(text, "message_ttl: 600", "message_ttl: 900")
    assert only(run(text), "GB305").severity is Severity.INFO
    short = edit(text, "time_limit: 300", "time_limit: 60")
    assert not with_code(run(short), "GB305")


def test_unlimited_prefetch_is_a_warning():
    text = edit(CLEAN, "    time_limit: 60\n", "    time_limit: 60\n    prefetch_multiplier: 0\n")
    assert only(run(text), "GB307").severity is Severity.WARNING


@pytest.mark.parametrize("pool", ["gevent", "eventlet"])
def test_green_pools_are_info(pool):
    text = edit(CLEAN, "    time_limit: 60\n", f"    time_limit: 60\n    pool: {pool}\n")
    finding = only(run(text), "GB306")
    assert finding.severity is Severity.INFO
    assert f"the {pool} package must be installed" in finding.message


# --- dead letters ------------------------------------------------------------------------------


def test_dead_letter_queue_without_max_length_or_alert_is_warned():
    text = edit(
        CLEAN, "    max_length: 1000\n    overflow: reject-publish\n    alert_depth: 10\n", ""
    )
    findings = run(text)
    assert only(findings, "GB401").severity is Severity.WARNING
    assert only(findings, "GB402").severity is Severity.WARNING
    assert only(findings, "GB401").location == line_of(text, "q.dlq:")


def test_dead_letter_queue_dropping_the_oldest_is_info():
    text = edit(CLEAN, "reject-publish\n    alert_depth: 10", "drop-head\n    alert_depth: 10")
    finding = only(run(text), "GB403")
    assert finding.severity is Severity.INFO
    assert "PostgreSQL" in finding.message


def test_work_queue_without_dead_letter_exchange_is_a_warning():
    text = edit(CLEAN, "    dead_letter_exchange: dlx\n    dead_letter_routing_key: dlq\n", "")
    text = edit(text, "    dead_letter_strategy: at-least-once\n", "")
    assert only(run(text), "GB404").severity is Severity.WARNING


def test_unknown_dead_letter_exchange_is_an_error():
    text = edit(CLEAN, "dead_letter_exchange: dlx", "dead_letter_exchange: dl")
    finding = only(run(text), "GB405")
    assert finding.severity is Severity.ERROR
    assert finding.location == line_of(text, "dead_letter_exchange: dl")


def test_dead_letter_routing_key_that_reaches_no_queue_is_an_error():
    text = edit(CLEAN, "dead_letter_routing_key: dlq", "dead_letter_routing_key: dead")
    finding = only(run(text), "GB406")
    assert finding.severity is Severity.ERROR
    assert "dead letters lead nowhere" in finding.message
    assert "'dead'" in finding.message


def test_dead_letters_keep_the_original_key_when_no_dead_letter_routing_key_is_set():
    text = edit(CLEAN, "    dead_letter_routing_key: dlq\n", "")
    assert "'work.classify'" in only(run(text), "GB406").message
    fanout = edit(text, "  dlx: {type: direct}", "  dlx: {type: fanout}")
    assert not with_code(run(fanout), "GB406")


def test_dead_letter_cycle_is_a_warning():
    binding = "    bindings: [{exchange: dlx, routing_key: dlq}]\n"
    text = edit(CLEAN, binding, f"{binding}    dead_letter_exchange: dlx\n")
    finding = only(run(text), "GB407")
    assert finding.severity is Severity.WARNING
    assert "q.dlq -> q.dlq" in finding.message


def test_dead_letter_routing_key_without_exchange_is_ignored():
    text = edit(CLEAN, "    dead_letter_exchange: dlx\n", "")
    text = edit(text, "    dead_letter_strategy: at-least-once\n", "")
    assert only(run(text), "GB408").severity is Severity.WARNING


# --- schedule ----------------------------------------------------------------------------------


def test_schedule_entry_without_a_route_is_an_error():
    text = edit(CLEAN, "{task: growbin.scan.classify,", "{task: growbin.scan.clasify,")
    finding = only(run(text), "GB501")
    assert finding.severity is Severity.ERROR
    assert finding.location == line_of(text, "nightly")
    assert "did you mean 'growbin.scan.classify'?" in finding.message


def test_a_glob_route_serves_scheduled_tasks():
    text = edit(CLEAN, "growbin.scan.classify: {", "growbin.scan.*: {")
    assert not with_code(run(text), "GB501")


@pytest.mark.parametrize("cron", ["61 * * * *", "0 25 * * *", "0 0 31 2 *", "0 0 * * funday"])
def test_cron_that_celery_cannot_parse_is_an_error(cron):
    text = edit(CLEAN, '"0 2 * * *"', f'"{cron}"')
    finding = only(run(text), "GB502")
    assert finding.severity is Severity.ERROR
    assert repr(cron) in finding.message
