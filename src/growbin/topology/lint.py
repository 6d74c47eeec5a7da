"""Topology lint: what RabbitMQ or Celery would refuse, or silently do wrong, before it happens.

Codes are stable: tools and people filter on them, so a retired check leaves its number unused.
All wording lives in ``_RULES`` so the catalogue can be read (and reviewed) in one place.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from celery.schedules import crontab

from growbin.errors import ConfigError
from growbin.topology.declare import DELAY_EXCHANGE, delay_return_key, delay_routing_key
from growbin.topology.findings import Finding, Severity
from growbin.topology.loader import LoadedTopology
from growbin.topology.matching import destinations, topic_matches
from growbin.topology.model import (
    DeadLetterStrategy,
    ExchangeType,
    Overflow,
    Pool,
    Queue,
    QueueRole,
    QueueType,
    Route,
)

E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO  # noqa: E741

# code: (default severity, one-line description, message template naming the value and the fix)
_RULES: dict[str, tuple[Severity, str, str]] = {
    "GB101": (E, "quorum queue with priority (x-max-priority): refused at declare",
              "quorum queue {q!r} has priority {value} (x-max-priority): RabbitMQ {version} "
              "refuses to declare it (406 PRECONDITION_FAILED). Fix: {fix}"),
    "GB102": (E, "quorum queue with overflow reject-publish-dlx: silently becomes drop-head",
              "quorum queue {q!r} has overflow reject-publish-dlx, which RabbitMQ silently "
              "replaces with drop-head (the oldest task is dropped at max_length). "
              "Fix: use overflow: reject-publish"),
    "GB103": (E, "at-least-once dead-lettering without a DLX or reject-publish: falls back",
              "quorum queue {q!r} sets dead_letter_strategy at-least-once with {missing}: "
              "RabbitMQ silently falls back to at-most-once. "
              "Fix: set dead_letter_exchange and overflow: reject-publish"),
    "GB104": (W, "at-least-once dead-lettering on a classic queue: ignored",
              "classic queue {q!r} sets dead_letter_strategy at-least-once, which classic queues "
              "ignore. Fix: make it type: quorum, or drop dead_letter_strategy"),
    "GB105": (E, "quorum queue without delivery_limit (error before RabbitMQ 4.0, info from 4.0)",
              "quorum queue {q!r} has no delivery_limit: {why}. Fix: set delivery_limit "
              "(e.g. 5) so a poison message is dead-lettered after that many deliveries"),
    "GB106": (W, "delivery_limit on a classic queue: ignored",
              "classic queue {q!r} has delivery_limit {value}, which classic queues ignore. "
              "Fix: make it type: quorum, or drop delivery_limit"),
    "GB107": (I, "classic queue priority above 10: costs memory and CPU",
              "queue {q!r} has priority {value}: every level costs memory and CPU in RabbitMQ. "
              "Fix: use at most 10"),
    "GB110": (E, "max_length or max_length_bytes 0: every message refused or dropped",
              "queue {q!r} has {key} 0: every message is refused or dropped at once. "
              "Fix: set a real cap (e.g. 5000) or remove {key}"),
    "GB111": (I, "work queue without message_ttl",
              "work queue {q!r} has no message_ttl: a task can wait forever behind a stuck "
              "worker. Fix: set message_ttl above the tasks' time limit (expired tasks are "
              "dead-lettered)"),
    "GB112": (W, "work queue without max_length: it can run away",
              "work queue {q!r} has no max_length: one queue can run away and fill the broker. "
              "Fix: set max_length with overflow: reject-publish"),
    "GB113": (W, "work queue that drops its oldest task at max_length (drop-head)",
              "work queue {q!r} has overflow {value}: at max_length the oldest task is silently "
              "dropped. Fix: use overflow: reject-publish so the publisher is refused"),
    "GB114": (W, "message_ttl not longer than the time limit of a task routed there",
              "queue {q!r} has message_ttl {value:g}s, not longer than the {limit:g}s time limit "
              "of {task!r}: a redelivered or waiting task can expire before it runs again. "
              "Fix: set message_ttl above {limit:g} (e.g. {double:g})"),
    "GB115": (I, "no quorum queue: countdowns and retries wait in the worker's memory",
              "no queue is a quorum queue, so Celery holds the countdowns and retries of "
              "{tasks} in the worker that received them (each takes a prefetch slot until it "
              "is due) instead of in RabbitMQ's delayed delivery, which Celery uses only when a "
              "queue is a quorum queue. Fix: make the work queues type: quorum"),
    "GB201": (E, "route names an unknown exchange",
              "task {task!r} is routed to unknown exchange {value!r}{hint}. "
              "Fix: declare it under exchanges or name an existing one"),
    "GB202": (E, "route's routing key reaches no queue",
              "task {task!r} is published to {ex!r} with key {value!r}, which no binding matches "
              "(bindings: {keys}): the task {fate} and never runs. Fix: bind its queue with a "
              "pattern that matches the key (e.g. 'prefix.#' on a topic exchange)"),
    "GB203": (E, "route's routing key reaches more than one queue: tasks run twice",
              "task {task!r} with key {value!r} reaches {queues}: every call runs once per queue. "
              "Fix: make the bindings of {ex!r} match this key for exactly one queue"),
    "GB204": (W, "route lands in a dead-letter or unroutable queue",
              "task {task!r} lands in {role} queue {q!r}, which is kept for people, not run. "
              "Fix: route it to a work queue"),
    "GB207": (W, "route priority on a classic queue without priority: ignored",
              "task {task!r} has priority {value}, but classic queue {q!r} has no priority, so "
              "it is ignored. Fix: set priority on the queue (e.g. 10) or drop the route's"),
    "GB208": (I, "route priority above the queue's priority: capped",
              "task {task!r} has priority {value}, above queue {q!r}'s {cap}: RabbitMQ treats it "
              "as {cap}. Fix: use 0-{cap}"),
    "GB209": (I, "route priorities on a quorum queue before RabbitMQ 4.0: ignored",
              "quorum queue {q!r} ignores the priorities of {tasks} on RabbitMQ {version}. "
              "Fix: upgrade to 4.0+, or give urgent work its own queue"),
    "GB210": (I, "route through a headers exchange: cannot be checked",
              "task {task!r} goes through headers exchange {value!r}, which routes on headers the "
              "lint cannot see. Fix: use a topic exchange for tasks"),
    "GB211": (E, "binding to an unknown exchange",
              "queue {q!r} binds to unknown exchange {value!r}{hint}. "
              "Fix: declare it under exchanges or name an existing one"),
    "GB212": (E, "alternate_exchange names an unknown exchange",
              "exchange {ex!r} has unknown alternate_exchange {value!r}{hint}. Fix: declare "
              "it (type: fanout, bound to a queue with role: unroutable) or name an existing one"),
    "GB213": (W, "alternate exchange that reaches no queue",
              "alternate exchange {value!r} of {ex!r} has no queue bound, so unroutable messages "
              "are still dropped. Fix: bind a queue with role: unroutable to {value!r}"),
    "GB214": (W, "exchange that receives routes has no alternate_exchange",
              "exchange {ex!r} receives task routes but has no alternate_exchange: a task whose "
              "key matches no binding is dropped without an error. Fix: set alternate_exchange "
              "to a fanout exchange bound to a queue with role: unroutable"),
    "GB215": (W, "wildcard binding key on a direct exchange",
              "queue {q!r} binds to direct exchange {ex!r} with {value!r}, but direct exchanges "
              "match keys literally ('*' and '#' are no wildcards). Fix: use type: topic"),
    "GB216": (E, "the delay exchange's name is reserved",
              "exchange {ex!r} is declared in the file, but growbin declares {ex!r} itself as "
              "the exchange that only RabbitMQ's delayed delivery feeds (countdowns and "
              "retries come back through it). Fix: rename your exchange"),
    "GB217": (E, "two queues whose delayed messages one binding would both take",
              "queue {q!r} and queue {other!r}: a countdown or retry for {q!r} comes back from "
              "delayed delivery with a key ending in {q!r}, which {other!r}'s binding "
              "{pattern!r} on the delay exchange also matches, so it would run twice. "
              "Fix: rename one of them so that neither name ends with '.' and the other's"),
    "GB301": (E, "worker profile names an unknown queue",
              "profile {p!r} consumes unknown queue {value!r}{hint}. "
              "Fix: declare it under queues or name an existing one"),
    "GB302": (W, "work queue that no worker profile consumes",
              "work queue {q!r} is consumed by no worker profile: its tasks pile up until they "
              "expire. Fix: add it to a profile's queues"),
    "GB303": (W, "worker profile consumes a dead-letter or unroutable queue",
              "profile {p!r} consumes {role} queue {value!r}: its messages would be run or acked "
              "away instead of kept for people. Fix: remove it; use the dead-letter tools"),
    "GB304": (W, "worker profile with acks_late false: tasks acked on receipt",
              "profile {p!r} has acks_late false: its workers ack each task when they receive "
              "it, so a task is lost when its worker dies or when its retry cannot be "
              "published, and the queue's delivery_limit never applies (failures are still "
              "dead-lettered). Fix: set acks_late: true and keep the tasks idempotent"),
    "GB305": (I, "prefetch above 1 on a profile with tasks over a minute",
              "profile {p!r} prefetches {value} per process with time limits up to {limit:g}s: "
              "reserved tasks wait behind long ones. Fix: prefetch_multiplier: 1 for long tasks"),
    "GB306": (I, "gevent or eventlet pool: the package must be installed",
              "profile {p!r} uses pool {value}: the {value} package must be installed in the "
              "worker image, and it monkey-patches the standard library. Fix: install it, or "
              "use pool: threads for I/O-bound work"),
    "GB307": (W, "prefetch_multiplier 0: unlimited prefetch",
              "profile {p!r} has prefetch_multiplier 0 (unlimited): one worker takes every "
              "message in its queues. Fix: use 1 for long tasks, 4-10 for short ones"),
    "GB401": (W, "dead-letter or unroutable queue without max_length",
              "{role} queue {q!r} is unbounded. Fix: set max_length (e.g. 10000) so a flood of "
              "failures cannot fill the broker"),
    "GB402": (W, "dead-letter or unroutable queue without alert_depth",
              "{role} queue {q!r} has no alert_depth: nobody is told it fills. "
              "Fix: set alert_depth (e.g. 100) so the alert rules page someone"),
    "GB403": (I, "dead-letter or unroutable queue drops its oldest messages at the cap",
              "{role} queue {q!r} drops its oldest messages at its cap ({value}): keep the "
              "archive in PostgreSQL (the dead-letter tools) so none is lost for good"),
    "GB404": (W, "work queue without dead_letter_exchange",
              "work queue {q!r} has no dead_letter_exchange: expired, rejected and "
              "over-delivered tasks vanish. Fix: set dead_letter_exchange (e.g. dlx) and "
              "dead_letter_routing_key (e.g. dlq)"),
    "GB405": (E, "dead_letter_exchange names an unknown exchange",
              "queue {q!r} dead-letters to unknown exchange {value!r}{hint}: dead letters "
              "are dropped. Fix: declare it under exchanges or name an existing one"),
    "GB406": (E, "dead letters lead to no queue",
              "dead letters lead nowhere: queue {q!r} dead-letters to {value!r} with {keys}, "
              "which no binding of {value!r} matches. Fix: bind a queue with role: dead-letter "
              "to {value!r} with that key, or set dead_letter_routing_key to a bound key"),
    "GB407": (W, "dead-letter cycle",
              "dead letters from {q!r} come back to it ({cycle}): RabbitMQ drops a message that "
              "dead-letters into the same queue twice. Fix: give dead-letter queues no "
              "dead_letter_exchange"),
    "GB408": (W, "dead_letter_routing_key without dead_letter_exchange: ignored",
              "queue {q!r} sets dead_letter_routing_key {value!r} without a "
              "dead_letter_exchange, so it is ignored. Fix: set dead_letter_exchange (e.g. dlx)"),
    "GB501": (E, "schedule entry whose task has no route",
              "schedule entry {s!r} runs task {value!r}, which has no route: Celery would publish "
              "it to its default queue, which no profile consumes{hint}. "
              "Fix: add a route for it under routes"),
    "GB502": (E, "schedule cron that Celery cannot parse",
              "schedule entry {s!r} has cron {value!r}, which Celery cannot use ({error}). "
              "Fix: five fields minute hour day-of-month month day-of-week, e.g. '0 2 * * *'"),
}  # fmt: skip

CODES: dict[str, str] = {code: rule[1] for code, rule in _RULES.items()}

Version = tuple[int, int, int]
_RANK = {E: 0, W: 1, I: 2}
_KEPT = (QueueRole.DEAD_LETTER, QueueRole.UNROUTABLE)
_LONG_TASK = 60.0


def parse_version(text: str) -> Version:
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if match is None:
        raise ConfigError(
            f"RabbitMQ version {text!r} is not valid: give major.minor or major.minor.patch, "
            "e.g. '3.13' or '4.1.2'"
        )
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def lint(loaded: LoadedTopology, rabbitmq_version: str = "3.13") -> list[Finding]:
    ctx = _Context(loaded, parse_version(rabbitmq_version), rabbitmq_version.strip())
    checks = (_queues, _limits, _dead_letters, _exchanges, _delays, _routes, _profiles, _schedule)
    for check in checks:
        check(ctx)
    return sorted(ctx.findings, key=_order)


def _order(finding: Finding) -> tuple[int, int, str]:
    line = finding.location.rpartition(":")[2]
    return _RANK[finding.severity], int(line) if line.isdigit() else 0, finding.code


@dataclass
class _Context:
    loaded: LoadedTopology
    version: Version
    version_text: str
    findings: list[Finding] = field(default_factory=list)
    reached: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        t = self.loaded.topology
        self.reached = {task: destinations(t, r.exchange, r.routing_key) for task, r in self.routes}

    @property
    def routes(self) -> Iterable[tuple[str, Route]]:
        return self.loaded.topology.routes.items()

    def report(
        self, code: str, path: tuple[str, ...], severity: Severity | None = None, **values: Any
    ) -> None:
        default, _, template = _RULES[code]
        message = template.format(version=self.version_text, **values)
        location = self.loaded.location(*path)
        self.findings.append(Finding(severity or default, code, location, message))

    def routes_to(self, queue: str) -> list[tuple[str, Route]]:
        return [(task, r) for task, r in self.routes if queue in self.reached[task]]

    def consumers(self, queue: str) -> list[str]:
        return self.loaded.topology.profiles_consuming(queue)

    def time_limit(self, route: Route, queue: str) -> float | None:
        """The hard limit a task runs under: the route's override, else its consumers' longest."""
        if route.time_limit is not None:
            return route.time_limit
        profiles = self.loaded.topology.profiles
        limits = [profiles[p].time_limit for p in self.consumers(queue)]
        return max((x for x in limits if x is not None), default=None)

    def retries(self, route: Route, queue: str) -> bool:
        if route.retry is not None:
            return route.retry.max_retries > 0
        profiles = self.loaded.topology.profiles
        return any(profiles[p].retry.max_retries > 0 for p in self.consumers(queue))


def _hint(name: str, known: Iterable[str]) -> str:
    options = sorted(known)
    score, best = max(((_likeness(name, o), o) for o in options), default=(0.0, ""))
    if score >= 0.6:
        return f" (did you mean {best!r}?)"
    if not options:
        return " (none is declared)"
    return f" (known: {', '.join(options)})" if len(options) <= 6 else ""


def _likeness(a: str, b: str) -> float:
    # a shared dotted prefix ('growbin.jobs.') would make unrelated names look alike
    wa, wb = a.split("."), b.split(".")
    while len(wa) > 1 and len(wb) > 1 and wa[0] == wb[0]:
        wa, wb = wa[1:], wb[1:]
    return difflib.SequenceMatcher(None, ".".join(wa), ".".join(wb)).ratio()


def _priority_fix(version: Version) -> str:
    if version < (4, 0, 0):
        return (
            "quorum queues have no priorities: drop `priority`, or use a classic queue, "
            "or split into separate queues"
        )
    if version < (4, 3, 0):
        return (
            "drop `priority`; quorum queues honour message priority in two levels "
            "(0-4 normal, 5+ high)"
        )
    return "drop `priority`; quorum queues support 32 message priority levels without the argument"


def _queues(ctx: _Context) -> None:
    for name, q in ctx.loaded.topology.queues.items():
        at = ("queues", name)
        if q.type is QueueType.QUORUM:
            if q.priority is not None:
                fix = _priority_fix(ctx.version)
                ctx.report("GB101", (*at, "priority"), q=name, value=q.priority, fix=fix)
            if q.overflow is Overflow.REJECT_PUBLISH_DLX:
                ctx.report("GB102", (*at, "overflow"), q=name)
            if q.delivery_limit is None and ctx.version < (4, 0, 0):
                why = f"on RabbitMQ {ctx.version_text} a poison message is redelivered forever"
                ctx.report("GB105", at, q=name, why=why)
            elif q.delivery_limit is None:
                why = f"RabbitMQ {ctx.version_text} defaults it to 20; say so explicitly"
                ctx.report("GB105", at, I, q=name, why=why)
            routes = ctx.routes_to(name)
            prioritized = [f"{t!r} ({r.priority})" for t, r in routes if r.priority is not None]
            if prioritized and ctx.version < (4, 0, 0):
                ctx.report("GB209", at, q=name, tasks=", ".join(prioritized))
        else:
            if q.delivery_limit is not None:
                ctx.report("GB106", (*at, "delivery_limit"), q=name, value=q.delivery_limit)
            if q.priority is not None and q.priority > 10:
                ctx.report("GB107", (*at, "priority"), q=name, value=q.priority)
        if q.dead_letter_strategy is DeadLetterStrategy.AT_LEAST_ONCE:
            _at_least_once(ctx, name, q)


def _at_least_once(ctx: _Context, name: str, q: Queue) -> None:
    at = ("queues", name, "dead_letter_strategy")
    if q.type is QueueType.CLASSIC:
        ctx.report("GB104", at, q=name)
        return
    missing = []
    if q.dead_letter_exchange is None:
        missing.append("no dead_letter_exchange")
    if q.overflow is not Overflow.REJECT_PUBLISH:
        missing.append(f"overflow {q.overflow.value if q.overflow else 'unset (drop-head)'}")
    if missing:
        ctx.report("GB103", at, q=name, missing=" and ".join(missing))


def _limits(ctx: _Context) -> None:
    for name, q in ctx.loaded.topology.queues.items():
        at = ("queues", name)
        for key, value in (("max_length", q.max_length), ("max_length_bytes", q.max_length_bytes)):
            if value == 0:
                ctx.report("GB110", (*at, key), q=name, key=key)
        if q.role is not QueueRole.WORK:
            continue
        if q.message_ttl is None:
            ctx.report("GB111", at, q=name)
        else:
            _ttl_versus_time_limits(ctx, name, q.message_ttl)
        if q.max_length is None and q.max_length_bytes is None:
            ctx.report("GB112", at, q=name)
        elif q.overflow in (None, Overflow.DROP_HEAD):
            shown = "drop-head" if q.overflow else "unset (drop-head)"
            ctx.report("GB113", (*at, "overflow"), q=name, value=shown)


def _ttl_versus_time_limits(ctx: _Context, name: str, ttl: float) -> None:
    # a requeued message keeps its first expiry: a task redelivered after its worker died near
    # the time limit is already expired and goes to the dead letters instead of running again
    limits = [(lim, task) for task, r in ctx.routes_to(name) if (lim := ctx.time_limit(r, name))]
    if not limits:
        return
    limit, task = max(limits)
    if ttl <= limit:
        at = ("queues", name, "message_ttl")
        ctx.report("GB114", at, q=name, value=ttl, limit=limit, task=task, double=2 * limit)


def _dead_letter_targets(ctx: _Context, name: str, q: Queue) -> dict[str, list[str]] | None:
    """Queues reached per dead-letter routing key, or None when any key may arrive."""
    assert q.dead_letter_exchange is not None
    if q.dead_letter_routing_key is not None:
        keys = [q.dead_letter_routing_key]
    else:  # RabbitMQ keeps each message's own routing key
        keys = sorted({r.routing_key for _, r in ctx.routes_to(name)})
        if not keys:
            return None
    t = ctx.loaded.topology
    return {key: destinations(t, q.dead_letter_exchange, key) for key in keys}


def _dead_letter_edges(ctx: _Context) -> dict[str, set[str]]:
    t = ctx.loaded.topology
    edges: dict[str, set[str]] = {}
    for name, q in t.queues.items():
        dlx = q.dead_letter_exchange
        if dlx is None or dlx not in t.exchanges:
            continue
        targets = _dead_letter_targets(ctx, name, q)
        if targets is None:
            edges[name] = {qn for qn, _ in t.queues_bound_to(dlx)}
        else:
            edges[name] = {qn for found in targets.values() for qn in found}
    return edges


def _cycle(edges: dict[str, set[str]], start: str) -> list[str] | None:
    stack, seen = [[start]], {start}
    while stack:
        path = stack.pop()
        for nxt in sorted(edges.get(path[-1], ())):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append([*path, nxt])
    return None


def _dead_letters(ctx: _Context) -> None:
    t = ctx.loaded.topology
    for name, q in t.queues.items():
        at = ("queues", name)
        if q.role in _KEPT:
            role = q.role.value
            if q.max_length is None and q.max_length_bytes is None:
                ctx.report("GB401", at, q=name, role=role)
            elif q.overflow in (None, Overflow.DROP_HEAD):
                cap = q.max_length if q.max_length is not None else f"{q.max_length_bytes} bytes"
                ctx.report("GB403", (*at, "overflow"), q=name, role=role, value=cap)
            if q.alert_depth is None:
                ctx.report("GB402", at, q=name, role=role)
        if q.dead_letter_exchange is not None:
            _dead_letter_route(ctx, name, q)
            continue
        if q.dead_letter_routing_key is not None:
            at_key = (*at, "dead_letter_routing_key")
            ctx.report("GB408", at_key, q=name, value=q.dead_letter_routing_key)
        if q.role is QueueRole.WORK:
            ctx.report("GB404", at, q=name)
    edges = _dead_letter_edges(ctx)
    for name in t.queues:
        if cycle := _cycle(edges, name):
            at_dlx = ("queues", name, "dead_letter_exchange")
            ctx.report("GB407", at_dlx, q=name, cycle=" -> ".join(cycle))


def _dead_letter_route(ctx: _Context, name: str, q: Queue) -> None:
    t = ctx.loaded.topology
    dlx = q.dead_letter_exchange
    assert dlx is not None
    at = ("queues", name, "dead_letter_exchange")
    if dlx not in t.exchanges:
        ctx.report("GB405", at, q=name, value=dlx, hint=_hint(dlx, t.exchanges))
        return
    targets = _dead_letter_targets(ctx, name, q)
    if targets is None:
        lost = [] if t.queues_bound_to(dlx) else ["any key"]
    else:
        lost = [repr(key) for key, found in targets.items() if not found]
    if lost:
        ctx.report("GB406", at, q=name, value=dlx, keys=", ".join(lost))


def _exchanges(ctx: _Context) -> None:
    t = ctx.loaded.topology
    for name, q in t.queues.items():
        for i, b in enumerate(q.bindings):
            at = ("queues", name, "bindings", str(i))
            ex = t.exchanges.get(b.exchange)
            if ex is None:
                hint = _hint(b.exchange, t.exchanges)
                ctx.report("GB211", (*at, "exchange"), q=name, value=b.exchange, hint=hint)
            elif ex.type is ExchangeType.DIRECT and {"*", "#"} & set(b.routing_key.split(".")):
                at_key = (*at, "routing_key")
                ctx.report("GB215", at_key, q=name, ex=b.exchange, value=b.routing_key)
    routed = {r.exchange for _, r in ctx.routes}
    for name, ex in t.exchanges.items():
        ae = ex.alternate_exchange
        at_ae = ("exchanges", name, "alternate_exchange")
        if ae is not None and ae not in t.exchanges:
            ctx.report("GB212", at_ae, ex=name, value=ae, hint=_hint(ae, t.exchanges))
        elif ae is not None and not t.queues_bound_to(ae):
            ctx.report("GB213", at_ae, ex=name, value=ae)
        if ae is None and name in routed and ex.type in (ExchangeType.TOPIC, ExchangeType.DIRECT):
            ctx.report("GB214", ("exchanges", name), ex=name)


def _delays(ctx: _Context) -> None:
    """Countdowns and retries: RabbitMQ's delayed delivery through the delay exchange."""
    t = ctx.loaded.topology
    if DELAY_EXCHANGE in t.exchanges:
        ctx.report("GB216", ("exchanges", DELAY_EXCHANGE), ex=DELAY_EXCHANGE)
    # a message comes back as "<28 bits>.<key>"; Celery's own route-less tasks use "<key>"
    for name in t.queues:
        key = delay_routing_key(name)
        for other in t.queues:
            pattern = delay_return_key(other)
            if other != name and any(topic_matches(pattern, k) for k in (key, f"0.{key}")):
                at = ("queues", name)
                ctx.report("GB217", at, q=name, other=other, pattern=pattern)
    if any(q.type is QueueType.QUORUM for q in t.queues.values()):
        return
    delayed = [
        task
        for task, r in ctx.routes
        if r.uses_eta or any(ctx.retries(r, q) for q in ctx.reached[task])
    ]
    if delayed:
        shown = ", ".join(repr(task) for task in delayed[:3])
        more = len(delayed) - 3
        tasks = f"{shown} and {more} more" if more > 0 else shown
        ctx.report("GB115", ("queues",), tasks=tasks)


def _routes(ctx: _Context) -> None:
    t = ctx.loaded.topology
    for task, r in ctx.routes:
        at = ("routes", task)
        ex = t.exchanges.get(r.exchange)
        if ex is None:
            hint = _hint(r.exchange, t.exchanges)
            ctx.report("GB201", (*at, "exchange"), task=task, value=r.exchange, hint=hint)
            continue
        if ex.type is ExchangeType.HEADERS:
            ctx.report("GB210", (*at, "exchange"), task=task, value=r.exchange)
            continue
        found = ctx.reached[task]
        if not found:
            keys = sorted({b.routing_key for _, b in t.queues_bound_to(r.exchange)})
            ae = ex.alternate_exchange
            fate = f"lands in the unroutable queue via {ae!r}" if ae else "is dropped by RabbitMQ"
            shown = ", ".join(map(repr, keys)) or "none"
            ctx.report(
                "GB202", (*at, "routing_key"),
                task=task, ex=r.exchange, value=r.routing_key, keys=shown, fate=fate,
            )  # fmt: skip
        elif len(found) > 1:
            queues = f"{len(found)} queues ({', '.join(found)})"
            at_key = (*at, "routing_key")
            ctx.report(
                "GB203", at_key, task=task, value=r.routing_key, queues=queues, ex=r.exchange
            )
        for qname in found:
            _route_into(ctx, task, r, qname)


def _route_into(ctx: _Context, task: str, r: Route, qname: str) -> None:
    q = ctx.loaded.topology.queues[qname]
    at = ("routes", task)
    if q.role is not QueueRole.WORK:
        ctx.report("GB204", (*at, "routing_key"), task=task, role=q.role.value, q=qname)
        return
    if r.priority is None:
        return
    at_priority = (*at, "priority")
    if q.type is QueueType.QUORUM:
        return  # GB209, once per queue
    if q.priority is None:
        ctx.report("GB207", at_priority, task=task, value=r.priority, q=qname)
    elif r.priority > q.priority:
        ctx.report("GB208", at_priority, task=task, value=r.priority, q=qname, cap=q.priority)


def _profiles(ctx: _Context) -> None:
    t = ctx.loaded.topology
    for pname, p in t.profiles.items():
        at = ("profiles", pname)
        for i, qname in enumerate(p.queues):
            q = t.queues.get(qname)
            at_queue = (*at, "queues", str(i))
            if q is None:
                ctx.report("GB301", at_queue, p=pname, value=qname, hint=_hint(qname, t.queues))
            elif q.role is not QueueRole.WORK:
                ctx.report("GB303", at_queue, p=pname, value=qname, role=q.role.value)
        if not p.acks_late:
            ctx.report("GB304", (*at, "acks_late"), p=pname)
        longest = max(p.time_limit or 0.0, p.soft_time_limit or 0.0)
        at_prefetch = (*at, "prefetch_multiplier")
        if p.prefetch_multiplier == 0:
            ctx.report("GB307", at_prefetch, p=pname)
        elif p.prefetch_multiplier > 1 and longest > _LONG_TASK:
            ctx.report("GB305", at_prefetch, p=pname, value=p.prefetch_multiplier, limit=longest)
        if p.pool in (Pool.GEVENT, Pool.EVENTLET):
            ctx.report("GB306", (*at, "pool"), p=pname, value=p.pool.value)
    for qname, q in t.queues.items():
        if q.role is QueueRole.WORK and not ctx.consumers(qname):
            ctx.report("GB302", ("queues", qname), q=qname)


def _schedule(ctx: _Context) -> None:
    t = ctx.loaded.topology
    for name, entry in t.schedule.items():
        at = ("schedule", name)
        if t.route_for(entry.task) is None:
            hint = _hint(entry.task, t.routes)
            ctx.report("GB501", (*at, "task"), s=name, value=entry.task, hint=hint)
        if entry.cron is None:
            continue
        minute, hour, dom, month, dow = entry.cron.split()
        try:
            crontab(
                minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow
            )
        except Exception as exc:  # Celery raises ValueError and others, not one type
            ctx.report("GB502", (*at, "cron"), s=name, value=entry.cron, error=exc)
