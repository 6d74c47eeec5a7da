import pytest

from growbin.db.engine import check_connection, make_engine
from growbin.errors import ServiceUnavailableError
from growbin.service_hints import start_service_hint
from growbin.settings import Environment, Settings

UNREACHABLE_DB = "postgresql+psycopg://postgres@127.0.0.1:1/none"


@pytest.mark.parametrize("env", [Environment.STAGING, Environment.PRODUCTION])
def test_outside_development_a_fix_hint_never_names_a_developer_command(env):
    hint = start_service_hint(env, "Redis", "GROWBIN_REDIS_URL")
    assert "make services" not in hint
    assert "GROWBIN_REDIS_URL" in hint


@pytest.mark.parametrize("env", [Environment.DEVELOPMENT, Environment.TEST])
def test_in_development_a_fix_hint_names_make_services(env):
    assert "make services" in start_service_hint(env, "Redis", "GROWBIN_REDIS_URL")


@pytest.mark.parametrize(
    ("env", "suggests_make_services"),
    [
        (Environment.PRODUCTION, False),
        (Environment.STAGING, False),
        (Environment.DEVELOPMENT, True),
    ],
)
def test_an_unreachable_database_gives_a_fix_for_its_environment(env, suggests_make_services):
    engine = make_engine(Settings(env=env, database_url=UNREACHABLE_DB))
    try:
        with pytest.raises(ServiceUnavailableError) as refused:
            check_connection(engine)
    finally:
        engine.dispose()
    assert ("make services" in str(refused.value)) is suggests_make_services
    assert "GROWBIN_DATABASE_URL" in str(refused.value)
