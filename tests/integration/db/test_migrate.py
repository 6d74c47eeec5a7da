"""The packaged Alembic migrations against a real PostgreSQL."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import growbin.db.models  # noqa: F401 - registers the tables
from growbin.db.base import Base
from growbin.db.engine import make_engine
from growbin.db.migrate import current_revision, head_revision, upgrade
from growbin.errors import ServiceUnavailableError
from growbin.settings import load_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(database_url):
    engine = make_engine(load_settings(env="test"), url=database_url)
    yield engine
    engine.dispose()


def test_upgrade_reaches_the_head_and_running_it_again_changes_nothing(database_url, engine):
    assert upgrade(load_settings(env="test"), url=database_url) == head_revision()
    assert current_revision(engine) == head_revision()


def test_the_migrations_create_exactly_what_the_models_declare(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_an_unreachable_database_is_named_with_its_password_masked():
    settings = load_settings(
        env="test", database_url="postgresql://growbin:s3cret@127.0.0.1:1/growbin"
    )

    with pytest.raises(ServiceUnavailableError) as caught:
        upgrade(settings)

    message = str(caught.value)
    assert "PostgreSQL is not reachable at postgresql+psycopg://growbin:****@127.0.0.1:1" in message
    assert "s3cret" not in message
    assert "GROWBIN_DATABASE_URL" in message
