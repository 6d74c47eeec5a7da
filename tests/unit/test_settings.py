import pytest

from growbin.errors import ConfigError
from growbin.settings import Environment, Settings, check_secure, load_settings, mask_url


def test_settings_come_from_growbin_prefixed_environment_variables(monkeypatch):
    monkeypatch.setenv("GROWBIN_BROKER_URL", "amqp://u:p@rabbit:5672/vh")
    monkeypatch.setenv("GROWBIN_TOPOLOGY", "slo")
    settings = load_settings()
    assert settings.broker_url.get_secret_value() == "amqp://u:p@rabbit:5672/vh"
    assert settings.topology == "slo"


def test_masked_settings_never_show_a_password_or_secret():
    settings = Settings(
        broker_url="amqp://admin:hunter2@rabbit:5672//",
        api_secret="topsecret",
        database_url="postgresql://app:pw123@db/growbin",
    )
    shown = str(settings.masked())
    assert "hunter2" not in shown and "topsecret" not in shown and "pw123" not in shown
    assert settings.masked()["broker_url"] == "amqp://admin:****@rabbit:5672//"
    assert settings.masked()["api_secret"] == "********"


def test_mask_url_leaves_a_url_without_password_alone():
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_production_refuses_guest_credentials_on_a_remote_broker_naming_the_variable():
    settings = Settings(
        env=Environment.PRODUCTION,
        broker_url="amqp://guest:guest@rabbit.internal:5672//",
        rabbitmq_api_url="http://ops:pw@rabbit.internal:15672/api",
        api_secret="x" * 32,
    )
    with pytest.raises(ConfigError, match="GROWBIN_BROKER_URL uses guest/guest"):
        check_secure(settings)


def test_production_refuses_an_empty_api_secret():
    settings = Settings(
        env=Environment.PRODUCTION,
        broker_url="amqp://app:pw@rabbit:5672//",
        rabbitmq_api_url="http://ops:pw@rabbit:15672/api",
    )
    with pytest.raises(ConfigError, match="GROWBIN_API_SECRET is empty"):
        check_secure(settings)


def test_production_accepts_guest_on_loopback_with_real_secret():
    settings = Settings(
        env=Environment.PRODUCTION,
        broker_url="amqp://guest:guest@127.0.0.1:5672//",
        rabbitmq_api_url="http://guest:guest@localhost:15672/api",
        api_secret="x" * 32,
    )
    check_secure(settings)


def test_development_allows_the_local_defaults():
    check_secure(Settings())


def test_a_malformed_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("GROWBIN_ENV", "prod")
    with pytest.raises(ConfigError, match="GROWBIN_ENV"):
        load_settings()


def test_the_apis_settings_come_from_growbin_api_variables(monkeypatch):
    monkeypatch.setenv("GROWBIN_API_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("GROWBIN_API_FETCH_ALLOWED_HOSTS", "images.example, cdn.example")
    monkeypatch.setenv("GROWBIN_API_CORS_ORIGINS", '["https://app.example"]')
    settings = load_settings()
    assert settings.api.max_body_bytes == 4096
    assert settings.api.fetch_allowed_hosts == ("images.example", "cdn.example")
    assert settings.api.cors_origins == ("https://app.example",)


def test_a_zero_api_setting_is_kept_not_replaced_by_its_default(monkeypatch):
    monkeypatch.setenv("GROWBIN_API_PUBLISH_MAX_RETRIES", "0")
    assert load_settings().api.publish_max_retries == 0


def test_an_invalid_api_setting_names_its_variable(monkeypatch):
    monkeypatch.setenv("GROWBIN_API_MAX_BODY_BYTES", "20MB")
    with pytest.raises(ConfigError, match=r"GROWBIN_API_MAX_BODY_BYTES.*'20MB'"):
        load_settings()


def test_a_misspelt_api_variable_is_refused_naming_it_and_the_right_name(monkeypatch):
    monkeypatch.setenv("GROWBIN_API_MAX_BODY_BYTE", "4096")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert "GROWBIN_API_MAX_BODY_BYTE " in str(refused.value)
    assert "did you mean GROWBIN_API_MAX_BODY_BYTES" in str(refused.value)


def test_the_api_secret_is_not_taken_for_a_misspelt_api_setting(monkeypatch):
    monkeypatch.setenv("GROWBIN_API_SECRET", "s" * 32)
    assert load_settings().api_secret.get_secret_value() == "s" * 32


def test_the_api_settings_are_shown_with_the_others():
    assert Settings().masked()["api"]["max_body_bytes"] == Settings().api.max_body_bytes


@pytest.mark.parametrize(
    ("url", "secret", "shown"),
    [
        (
            "amqp://guest:guest@h1/v;amqp://guest:SECRET@h2/v",
            "SECRET",
            "amqp://guest:****@h1/v;amqp://guest:****@h2/v",
        ),
        (
            "redis://127.0.0.1:6379/0?password=SECRET&db=1",
            "SECRET",
            "redis://127.0.0.1:6379/0?password=****&db=1",
        ),
        (
            "postgresql://app:SECRET@db1:5432,db2:5433/growbin?sslmode=require",
            "SECRET",
            "postgresql://app:****@db1:5432,db2:5433/growbin?sslmode=require",
        ),
        ("amqp://u:p@SECRET@rabbit/vh", "SECRET", "amqp://u:****@rabbit/vh"),
        (
            "https://api.example/v1?api_key=SECRET&access_token=SECRET&q=x",
            "SECRET",
            "https://api.example/v1?api_key=****&access_token=****&q=x",
        ),
        ("redis://:SECRET@[::1]:6379/0", "SECRET", "redis://:****@[::1]:6379/0"),
    ],
)
def test_mask_url_hides_every_password_form_userinfo_query_and_multi_host_lists(url, secret, shown):
    masked = mask_url(url)
    assert secret not in masked
    assert masked == shown


def test_mask_text_hides_passwords_of_every_url_inside_a_message():
    from growbin.settings import mask_text

    text = (
        "cannot reach amqp://guest:SECRET@h2/v (or redis://h:6379/0?password=SECRET2): "
        "connection refused"
    )
    masked = mask_text(text)
    assert "SECRET" not in masked
    assert "amqp://guest:****@h2/v" in masked and "password=****" in masked


def test_masked_settings_hide_multi_host_and_query_string_passwords_and_plain_url_fields():
    settings = Settings(
        broker_url="amqp://guest:guest@h1/v;amqp://guest:SECRET1@h2/v",
        redis_url="redis://127.0.0.1:6379/0?password=SECRET2",
        oauth_userinfo_url="https://kapi.example/v2/user/me?access_token=SECRET3",
    )
    shown = str(settings.masked())
    for secret in ("SECRET1", "SECRET2", "SECRET3"):
        assert secret not in shown
