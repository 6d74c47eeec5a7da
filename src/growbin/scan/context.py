"""What scan tasks need at run time, built once per process from the settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from growbin.db.engine import make_engine, session_factory, translate_errors
from growbin.runtime.kv import KeyValue, RedisKV
from growbin.runtime.task_base import settings_of
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

    @classmethod
    def build(cls, settings: Settings, *, kv: KeyValue | None = None) -> ScanContext:
        engine = make_engine(settings)
        vision, text = providers(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            store=LocalImageStore(Path(settings.image_dir)),
            kv=kv or RedisKV(settings.redis_url.get_secret_value()),
            rules=load_rules(),
            vision=vision,
            text=text,
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        with translate_errors(self.engine), self.sessions.begin() as session:
            yield session


def providers(settings: Settings) -> tuple[VisionClassifier, TextGenerator]:
    if settings.providers == "openai":
        config = OpenAIConfig(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            vision_model=settings.openai_vision_model,
            text_model=settings.openai_text_model,
            timeout=settings.openai_timeout,
        )
        return OpenAIVisionClassifier(config), OpenAITextGenerator(config)
    return OfflineVisionClassifier(), OfflineTextGenerator()


def attach_scan_context(app: Celery, context: ScanContext) -> None:
    """Use this context for the app's scan tasks (the embedded default builds its own)."""
    app.growbin_scan_context = (os.getpid(), context)


def scan_context(app: Celery) -> ScanContext:
    """The context of this process: built on first use, again after a fork (prefork pools)."""
    current = getattr(app, "growbin_scan_context", None)
    if current is not None and current[0] == os.getpid():
        context: ScanContext = current[1]
        return context
    context = ScanContext.build(settings_of(app))
    attach_scan_context(app, context)
    return context
