"""Settings from the environment and .env, model URIs, and masked keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings, load_settings, mask_secret, resolve_model, split_model_uri, suggested_models
from core.errors import ConfigError


def test_defaults_when_nothing_is_configured():
    settings = load_settings()
    assert settings.api_version == "2024-02-15-preview"
    assert settings.temperature == 0.0
    assert settings.concurrency == 8
    assert settings.default_model == "local:/smollm2"


def test_dotenv_is_loaded_and_real_environment_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch):
    (clean_env / ".env").write_text(
        "AZURE_OPENAI_ENDPOINT=https://from-dotenv.example\n"
        "AZURE_OPENAI_API_KEY=dotenv-key-123456\n"
        "AZURE_OPENAI_DEPLOYMENT=gpt-4.1-nano\n"
        "PROCTOR_CONCURRENCY=3\n"
    )
    monkeypatch.setenv("PROCTOR_CONCURRENCY", "5")
    settings = load_settings()
    assert settings.azure_endpoint == "https://from-dotenv.example"
    assert settings.concurrency == 5
    assert settings.default_model == "azure:/gpt-4.1-nano"


def test_provider_precedence(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-abcdefgh")
    assert load_settings().default_model == "openai:/gpt-4.1-nano"
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com/")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-4.1-mini")
    assert load_settings().default_model == "azure:/gpt-4.1-mini"
    monkeypatch.setenv("PROCTOR_MODEL", "openai:/gpt-4o")
    assert load_settings().default_model == "openai:/gpt-4o"


@pytest.mark.parametrize(
    ("env", "uri", "names"),
    [
        ({}, "azure:/gpt-4.1-nano", "AZURE_OPENAI_ENDPOINT"),
        ({"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com/"}, "azure:/gpt-4.1-nano", "AZURE_OPENAI_API_KEY"),
        ({"AZURE_OPENAI_ENDPOINT": "x.openai.azure.com", "AZURE_OPENAI_API_KEY": "k"}, "azure:/d",
         "AZURE_OPENAI_ENDPOINT"),
        ({"AZURE_OPENAI_ENDPOINT": "https://x", "AZURE_OPENAI_API_KEY": "k"}, "azure:/", "AZURE_OPENAI_DEPLOYMENT"),
        ({}, "openai:/gpt-4.1-mini", "OPENAI_API_KEY"),
        ({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "localhost:8000"}, "openai:/m", "OPENAI_BASE_URL"),
        ({"PROCTOR_CONCURRENCY": "many"}, "local:/smollm2", "PROCTOR_CONCURRENCY"),
        ({"PROCTOR_TIMEOUT": "0"}, "local:/smollm2", "PROCTOR_TIMEOUT"),
        ({"AZURE_OPENAI_ENDPOINT": "https://x"}, None, "AZURE_OPENAI_DEPLOYMENT"),
    ],
)
def test_missing_or_bad_settings_name_the_variable(monkeypatch, env, uri, names):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        resolve_model(uri)
    message = str(caught.value)
    assert names in message
    assert "\n" not in message


@pytest.mark.parametrize("uri", ["gpt-4", "bedrock:/claude", ""])
def test_bad_model_uris(uri):
    with pytest.raises(ConfigError, match="azure:/"):
        split_model_uri(uri)


def test_resolve_azure_and_openai(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com/")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-secret-key-0001")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-4.1-nano")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret-0002")
    azure = resolve_model("azure:/")
    assert (azure.provider, azure.name, azure.api_version) == ("azure", "gpt-4.1-nano", "2024-02-15-preview")
    assert resolve_model("azure:gpt-4.1-mini").uri == "azure:/gpt-4.1-mini"
    openai = resolve_model("openai:/gpt-4.1-mini")
    assert (openai.provider, openai.name, openai.base_url) == ("openai", "gpt-4.1-mini", None)
    # Keys stay out of what may be shown or logged.
    for spec in (azure, openai):
        assert spec.api_key not in repr(spec)
        assert spec.api_key not in str(spec.public_params())
    assert resolve_model("local:/").uri == "local:/smollm2"
    with pytest.raises(ConfigError, match="smollm2"):
        resolve_model("local:/llama-70b")


def test_masked_settings_never_show_keys():
    settings = Settings(azure_api_key="azure-very-secret-abcd", openai_api_key="sk-short")
    shown = settings.masked()
    assert shown["AZURE_OPENAI_API_KEY"] == "****abcd"
    assert shown["OPENAI_API_KEY"] == "****"
    assert "very-secret" not in str(shown)
    assert mask_secret("12345678") == "****"
    assert sorted(settings.secrets()) == sorted(["azure-very-secret-abcd", "sk-short"])


def test_masked_settings_and_logged_params_hide_url_credentials():
    settings = Settings(azure_endpoint="https://bob:hunter2pw@r.example/?api-key=query-key-0001",
                        azure_api_key="azure-very-secret-abcd", azure_deployment="d",
                        openai_base_url="http://alice:pa55word@127.0.0.1:9/v1", openai_api_key="sk-x-123456")
    shown = settings.masked()
    assert shown["AZURE_OPENAI_ENDPOINT"] == "https://****@r.example/?api-key=****"
    assert shown["OPENAI_BASE_URL"] == "http://****@127.0.0.1:9/v1"
    for spec in (resolve_model("azure:/d", settings), resolve_model("openai:/m", settings)):
        logged = str(spec.public_params())
        for secret in ("hunter2pw", "query-key-0001", "pa55word", "bob", "alice"):
            assert secret not in logged
        assert "****@" in logged


def test_suggested_models(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://x")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-4.1-nano")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert suggested_models() == ["azure:/gpt-4.1-nano", "openai:/gpt-4.1-nano", "local:/smollm2"]
