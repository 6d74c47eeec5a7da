"""What scan tasks need at run time, built once per process from the settings.

Paid providers are wrapped in the guards (:mod:`growbin.guard`): every call goes through the
idempotency key, the provider's circuit breaker and its cluster-wide rate limit, as the
topology's ``rate_limits:`` and ``breakers:`` say. The offline providers call nothing and are
used as they are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from growbin.db.engine import make_engine, session_factory, translate_errors
from growbin.guard.providers import (
    GuardConfig,
    GuardedTextGenerator,
    GuardedVisionClassifier,
    Guards,
)
from growbin.ops.metrics import MetricsGuardObserver
from growbin.runtime.kv import KeyValue, RedisKV
from growbin.runtime.task_base import settings_of, topology_of
from growbin.scan.providers.base import TextGenerator, VisionClassifier
from growbin.scan.providers.offline import OfflineTextGenerator, OfflineVisionClassifier
from growbin.scan.providers.openai_compat import (
    OpenAIConfig,
    OpenAITextGenerator,
    OpenAIVisionClassifier,
)
from growbin.scan.rules.loader import RuleBook, load_rules
from growbin.scan.storage import ImageStore, LocalImageStore
from growbin.settings import Settings
from growbin.topology import loader
from growbin.topology.model import Topology

logger = logging.getLogger("growbin.scan")


@dataclass
class ScanContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ImageStore
    kv: KeyValue
    rules: RuleBook
    vision: VisionClassifier
    text: TextGenerator
    guards: Guards | None = None

    @classmethod
    def build(
        cls, settings: Settings, *, kv: KeyValue | None = None, topology: Topology | None = None
    ) -> ScanContext:
        """``topology`` gives the guards' limits; by default the one GROWBIN_TOPOLOGY names."""
        engine = make_engine(settings)
        guards = None
        if settings.providers == "openai":
            topology = topology or loader.load(settings.topology).topology
            guards = Guards.from_url(
                settings.redis_url.get_secret_value(),
                GuardConfig.from_topology(topology, settings),
                observer=MetricsGuardObserver(),
            )
        vision, text = providers(settings, guards)
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            store=LocalImageStore(Path(settings.image_dir)),
            kv=kv or RedisKV(settings.redis_url.get_secret_value()),
            rules=load_rules(),
            vision=vision,
            text=text,
            guards=guards,
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        with translate_errors(self.engine), self.sessions.begin() as session:
            yield session


def providers(
    settings: Settings, guards: Guards | None = None
) -> tuple[VisionClassifier, TextGenerator]:
    if settings.providers != "openai":
        return OfflineVisionClassifier(), OfflineTextGenerator()
    config = OpenAIConfig(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key,
        vision_model=settings.openai_vision_model,
        text_model=settings.openai_text_model,
        timeout=settings.openai_timeout,
        response_format=settings.openai_response_format,
    )
    vision: VisionClassifier = OpenAIVisionClassifier(config)
    text: TextGenerator = OpenAITextGenerator(config)
    if guards is None:
        return vision, text
    name = config.provider_name
    for model in (config.vision_model, config.text_model):
        if guards.limiter.limit_for(name, model) is None:
            # Not an error (a private deployment may have no quota), but the seeds' do.
            logger.warning(
                "no rate limit for %s model %s: calls are not limited across workers; add "
                "`%s.%s: {rate: N, per: 60}` under rate_limits in the topology",
                name,
                model,
                name,
                model,
            )
    return (
        GuardedVisionClassifier(vision, guards.for_provider(name, config.vision_model)),
        GuardedTextGenerator(text, guards.for_provider(name, config.text_model)),
    )


def attach_scan_context(app: Celery, context: ScanContext) -> None:
    """Use this context for the app's scan tasks (the embedded default builds its own)."""
    app.growbin_scan_context = (os.getpid(), context)


def scan_context(app: Celery) -> ScanContext:
    """The context of this process: built on first use, again after a fork (prefork pools)."""
    current = getattr(app, "growbin_scan_context", None)
    if current is not None and current[0] == os.getpid():
        context: ScanContext = current[1]
        return context
    context = ScanContext.build(settings_of(app), topology=topology_of(app))
    attach_scan_context(app, context)
    return context
