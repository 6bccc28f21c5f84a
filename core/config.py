"""Settings from the environment (after loading `.env`), and model URIs turned into connection details.

Every variable Proctor reads is a field of `Settings`, documented where it is declared, and listed with an example
in `.env.example`. The real environment wins over `.env`. Keys are held here and nowhere else; anything that shows
settings uses `Settings.masked()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from core.errors import ConfigError
from core.safety import mask_url

DEFAULT_API_VERSION = "2024-02-15-preview"
DEFAULT_OPENAI_MODEL = "gpt-4.1-nano"
LOCAL_MODELS = ("smollm2",)
PROVIDERS = ("azure", "openai", "local")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _float(name: str, default: float | None) -> float | None:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in ("none", "default"):
        return None
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None


def _seconds(name: str, default: float) -> float:
    value = _float(name, default)
    if value is None or value < 0:
        raise ConfigError(f"{name} must be a number of seconds, 0 or more")
    return value


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """What Proctor reads from the environment. Each field names its variable in `metadata["env"]`."""

    azure_endpoint: str | None = field(default=None, metadata={"env": "AZURE_OPENAI_ENDPOINT", "url": True})
    """Azure OpenAI resource URL, e.g. https://my-resource.openai.azure.com/"""
    azure_api_key: str | None = field(default=None, metadata={"env": "AZURE_OPENAI_API_KEY", "secret": True})
    """Azure OpenAI key (never printed)."""
    api_version: str = field(default=DEFAULT_API_VERSION, metadata={"env": "OPENAI_API_VERSION"})
    """Azure OpenAI API version."""
    azure_deployment: str | None = field(default=None, metadata={"env": "AZURE_OPENAI_DEPLOYMENT"})
    """The default Azure deployment, e.g. gpt-4.1-nano (used by `azure:/` with no name, and as the default model)."""
    openai_api_key: str | None = field(default=None, metadata={"env": "OPENAI_API_KEY", "secret": True})
    """Key for OpenAI or an OpenAI-compatible server (never printed)."""
    openai_base_url: str | None = field(default=None, metadata={"env": "OPENAI_BASE_URL", "url": True})
    """Base URL of an OpenAI-compatible server, with its /v1 (empty: api.openai.com)."""
    openai_model: str = field(default=DEFAULT_OPENAI_MODEL, metadata={"env": "OPENAI_MODEL"})
    """Model used by `openai:/` with no name, and as the default model when only OpenAI is configured."""
    model: str | None = field(default=None, metadata={"env": "PROCTOR_MODEL"})
    """The default model under test, as a URI; without it the first configured provider wins."""
    models: tuple[str, ...] = field(default=(), metadata={"env": "PROCTOR_MODELS"})
    """More model URIs for the app's model pickers, a comma list (e.g. azure:/gpt-4.1-nano,azure:/gpt-4.1-mini)."""
    judge: str | None = field(default=None, metadata={"env": "PROCTOR_JUDGE"})
    """The default judge for evaluations, as an MLflow model URI (e.g. azure:/gpt-4.1-nano)."""
    temperature: float | None = field(default=0.0, metadata={"env": "PROCTOR_TEMPERATURE"})
    """Sampling temperature; 0 for repeatable benchmarks; `none` leaves it to the model."""
    system_prompt: str | None = field(default=None, metadata={"env": "PROCTOR_SYSTEM_PROMPT"})
    """System prompt sent before every question (none by default)."""
    concurrency: int = field(default=8, metadata={"env": "PROCTOR_CONCURRENCY"})
    """How many requests are in flight at once when answering many questions."""
    timeout: float = field(default=60.0, metadata={"env": "PROCTOR_TIMEOUT"})
    """Seconds one request may take before it is abandoned and retried."""
    max_retries: int = field(default=6, metadata={"env": "PROCTOR_MAX_RETRIES"})
    """Retries after the first attempt, on 5xx, timeouts, broken connections and garbled bodies (429s have their own
    budget, PROCTOR_RATE_LIMIT_WAIT). 6, not fewer: with 15% of such faults per request, 4 retries lose about one
    row in 6,000, 6 retries one in 190,000."""
    backoff_base: float = field(default=0.5, metadata={"env": "PROCTOR_BACKOFF_BASE"})
    """Seconds before the first retry (with jitter), doubling for each next one, at most 30 s."""
    rate_limit_wait: float = field(default=300.0, metadata={"env": "PROCTOR_RATE_LIMIT_WAIT"})
    """Seconds one question may spend waiting out 429s (rate limits) before it is given up; 429s do not count
    against PROCTOR_MAX_RETRIES, so that a quota storm slows a run instead of failing its rows."""

    @classmethod
    def from_env(cls) -> Settings:
        timeout = _float("PROCTOR_TIMEOUT", 60.0)
        if timeout is None or timeout <= 0:
            raise ConfigError("PROCTOR_TIMEOUT must be a positive number of seconds")
        return cls(
            azure_endpoint=_env("AZURE_OPENAI_ENDPOINT"),
            azure_api_key=_env("AZURE_OPENAI_API_KEY"),
            api_version=_env("OPENAI_API_VERSION", DEFAULT_API_VERSION) or DEFAULT_API_VERSION,
            azure_deployment=_env("AZURE_OPENAI_DEPLOYMENT"),
            openai_api_key=_env("OPENAI_API_KEY"),
            openai_base_url=_env("OPENAI_BASE_URL"),
            openai_model=_env("OPENAI_MODEL", DEFAULT_OPENAI_MODEL) or DEFAULT_OPENAI_MODEL,
            model=_env("PROCTOR_MODEL"),
            models=tuple(uri.strip() for uri in (_env("PROCTOR_MODELS") or "").split(",") if uri.strip()),
            judge=_env("PROCTOR_JUDGE"),
            temperature=_float("PROCTOR_TEMPERATURE", 0.0),
            system_prompt=_env("PROCTOR_SYSTEM_PROMPT"),
            concurrency=_int("PROCTOR_CONCURRENCY", 8, minimum=1),
            timeout=timeout,
            max_retries=_int("PROCTOR_MAX_RETRIES", 6, minimum=0),
            backoff_base=_float("PROCTOR_BACKOFF_BASE", 0.5) or 0.0,
            rate_limit_wait=_seconds("PROCTOR_RATE_LIMIT_WAIT", 300.0),
        )

    @property
    def default_model(self) -> str:
        """The model under test when none is named: PROCTOR_MODEL, else Azure, else OpenAI, else the local model."""
        if self.model:
            return self.model
        if self.azure_endpoint:
            if not self.azure_deployment:
                raise ConfigError(
                    "AZURE_OPENAI_ENDPOINT is set but AZURE_OPENAI_DEPLOYMENT is not: name the default deployment "
                    "(e.g. gpt-4.1-nano) or set PROCTOR_MODEL"
                )
            return f"azure:/{self.azure_deployment}"
        if self.openai_api_key or self.openai_base_url:
            return f"openai:/{self.openai_model}"
        return "local:/smollm2"

    def masked(self) -> dict[str, str]:
        """Every setting by variable name, keys and URL credentials masked, for screens and logs."""
        shown: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                shown[f.metadata["env"]] = ""
            elif isinstance(value, tuple):
                shown[f.metadata["env"]] = ",".join(value)
            elif f.metadata.get("secret"):
                shown[f.metadata["env"]] = mask_secret(str(value))
            elif f.metadata.get("url"):
                shown[f.metadata["env"]] = mask_url(value)
            else:
                shown[f.metadata["env"]] = str(value)
        return shown

    def secrets(self) -> list[str]:
        """The secret values in force, so that callers can scrub them from anything they write."""
        return [str(getattr(self, f.name)) for f in fields(self) if f.metadata.get("secret") and getattr(self, f.name)]


def mask_secret(secret: str) -> str:
    """`sk-abc...xyz` -> `****xyz`: enough to tell two keys apart, too little to use."""
    if len(secret) <= 8:
        return "****"
    return "****" + secret[-4:]


_dotenv_loaded = False


def load_dotenv_once(path: str | os.PathLike[str] | None = None) -> None:
    """Load `.env` from the current folder (or `path`) into the environment; real variables win."""
    global _dotenv_loaded
    if _dotenv_loaded and path is None:
        return
    from dotenv import load_dotenv

    load_dotenv(Path(path) if path else Path.cwd() / ".env", override=False)
    _dotenv_loaded = True


def load_settings() -> Settings:
    """Settings from the environment, after loading `.env` from the current folder."""
    load_dotenv_once()
    return Settings.from_env()


@dataclass(frozen=True)
class ModelSpec:
    """A model URI resolved into what a client needs. `api_key` is secret: never show or log it."""

    uri: str
    provider: str  # azure | openai | local
    name: str  # deployment (azure), model (openai), local model name
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None

    @property
    def label(self) -> str:
        """Short display name: the deployment or model name."""
        return self.name

    def public_params(self) -> dict[str, str]:
        """What may be logged about this model (no key, no credentials in the URL)."""
        params = {"model_uri": self.uri, "provider": self.provider, "model_name": self.name}
        if self.provider == "azure":
            params["deployment"] = self.name
            params["api_version"] = self.api_version or ""
        if self.base_url and self.provider != "local":
            params["base_url"] = mask_url(self.base_url)
        return params


def check_url(url: str, variable: str) -> None:
    """Refuse a URL no HTTP client can use (no host, a port that is not a number) with a one-line ConfigError.

    The message names the variable and the faulty part, never the whole URL (it may hold a password).
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ConfigError(f"{variable} is not a usable URL ({error}): write e.g. https://host:443/") from None
    if not parts.hostname:
        raise ConfigError(f"{variable} has no host name: write e.g. https://host:443/")
    if port == 0:
        raise ConfigError(f"{variable} has port 0: write a port from 1 to 65535")


def split_model_uri(uri: str) -> tuple[str, str]:
    """`azure:/gpt-4.1-nano` -> ("azure", "gpt-4.1-nano"). Also accepts `azure:gpt-4.1-nano` and `azure:/`."""
    text = (uri or "").strip()
    if ":" not in text:
        raise ConfigError(
            f"model {text!r} is not a model URI: write azure:/DEPLOYMENT, openai:/MODEL or local:/smollm2"
        )
    provider, _, rest = text.partition(":")
    provider = provider.strip().lower()
    name = rest.lstrip("/").strip()
    if provider not in PROVIDERS:
        raise ConfigError(
            f"unknown model provider {provider!r} in {text!r}: use azure:/, openai:/ or local:/"
        )
    return provider, name


def resolve_model(uri: str | None = None, settings: Settings | None = None) -> ModelSpec:
    """Turn a model URI (or the default model) into a `ModelSpec`, checking the settings it needs.

    Raises `ConfigError` naming the missing variable. The local model is resolved without starting it.
    """
    settings = settings or load_settings()
    uri = uri or settings.default_model
    provider, name = split_model_uri(uri)
    if provider == "azure":
        name = name or settings.azure_deployment or ""
        if not name:
            raise ConfigError("no Azure deployment named: write azure:/DEPLOYMENT or set AZURE_OPENAI_DEPLOYMENT")
        if not settings.azure_endpoint:
            raise ConfigError(f"AZURE_OPENAI_ENDPOINT is not set (needed for azure:/{name})")
        if not settings.azure_endpoint.startswith(("http://", "https://")):
            raise ConfigError("AZURE_OPENAI_ENDPOINT must start with https:// (or http:// for a local server)")
        check_url(settings.azure_endpoint, "AZURE_OPENAI_ENDPOINT")
        if not settings.azure_api_key:
            raise ConfigError(f"AZURE_OPENAI_API_KEY is not set (needed for azure:/{name})")
        return ModelSpec(
            uri=f"azure:/{name}",
            provider="azure",
            name=name,
            base_url=settings.azure_endpoint,
            api_key=settings.azure_api_key,
            api_version=settings.api_version,
        )
    if provider == "openai":
        name = name or settings.openai_model
        if not settings.openai_api_key:
            raise ConfigError(
                f"OPENAI_API_KEY is not set (needed for openai:/{name}; any value works for a local server)"
            )
        base = settings.openai_base_url
        if base and not base.startswith(("http://", "https://")):
            raise ConfigError("OPENAI_BASE_URL must start with http:// or https://")
        if base:
            check_url(base, "OPENAI_BASE_URL")
        return ModelSpec(uri=f"openai:/{name}", provider="openai", name=name, base_url=base,
                         api_key=settings.openai_api_key)
    # local
    name = name or LOCAL_MODELS[0]
    if name not in LOCAL_MODELS:
        raise ConfigError(f"unknown local model {name!r}: the embedded model is local:/smollm2")
    return ModelSpec(uri=f"local:/{name}", provider="local", name=name, api_key="local")


def suggested_models(settings: Settings | None = None) -> list[str]:
    """Model URIs worth offering in a picker: the default, PROCTOR_MODELS, each configured provider, the local one."""
    settings = settings or load_settings()
    found: list[str] = []
    candidates = [settings.model, *settings.models]
    if settings.azure_endpoint and settings.azure_deployment:
        candidates.append(f"azure:/{settings.azure_deployment}")
    if settings.openai_api_key:
        candidates.append(f"openai:/{settings.openai_model}")
    candidates.append("local:/smollm2")
    for uri in candidates:
        if uri and uri not in found:
            found.append(uri)
    return found
