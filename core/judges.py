"""Which LLM judge grades an evaluation, and the variables MLflow needs to call it.

`default_judge` picks the judge when none is given: PROCTOR_JUDGE, else azure:/gpt-4.1-nano when Azure is
configured, else none (code scorers only). `resolve_judge` checks a judge URI and gathers its credentials into a
`JudgeSetup`, raising `ConfigError` naming the variable to set when one is missing.

Judge credentials are MLflow's own variables (AZURE_API_KEY / AZURE_API_BASE / AZURE_API_VERSION, OPENAI_API_KEY /
OPENAI_BASE_URL); the caller sets them for the duration of the evaluate call only. For an azure:/ judge they are
derived from the AZURE_OPENAI_* settings when unset. `JudgeSetup.env` holds secrets: it is never logged.

The embedded judge (local:/smollm2) is served by core.local_model's llama.cpp server and called as openai:/;
`prefer_json_object` tells MLflow up front that it cannot take a json_schema response_format.

mlflow is imported only inside the functions that need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.config import Settings

DEFAULT_AZURE_JUDGE = "azure:/gpt-4.1-nano"


@dataclass(frozen=True)
class JudgeSetup:
    """The judge as MLflow will call it: its URI and the variables MLflow reads for it (secret: never log `env`)."""

    uri: str  # as logged (e.g. azure:/gpt-4.1-nano, local:/smollm2)
    mlflow_uri: str  # as given to the scorers (local:/smollm2 -> openai:/smollm2)
    env: dict[str, str] = field(repr=False, default_factory=dict)
    warnings: tuple[str, ...] = ()


def _clean(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def default_judge(settings: Settings) -> str | None:
    """PROCTOR_JUDGE, else azure:/gpt-4.1-nano when Azure is configured, else None (code scorers only)."""
    if settings.judge:
        return settings.judge
    if settings.azure_endpoint and settings.azure_api_key:
        return DEFAULT_AZURE_JUDGE
    return None


def resolve_judge(uri: str | None, settings: Settings) -> JudgeSetup | None:
    """Check the judge URI and gather its credentials. `none` (or no judge configured) gives None.

    Raises `ConfigError` naming the variable to set when a credential is missing.
    """
    text = (uri if uri is not None else default_judge(settings) or "").strip()
    if not text or text.lower() in ("none", "off", "no"):
        return None
    if ":" not in text:
        raise ConfigError(f"judge {text!r} is not a model URI: write azure:/DEPLOYMENT, openai:/MODEL or "
                          "local:/smollm2")
    provider, _, name = text.partition(":")
    provider, name = provider.strip().lower(), name.lstrip("/").strip()
    if not name:
        raise ConfigError(f"judge {text!r} names no model: write e.g. {provider}:/gpt-4.1-nano")
    uri = f"{provider}:/{name}"
    if provider == "azure":
        env = {
            "AZURE_API_KEY": _clean(os.environ.get("AZURE_API_KEY")) or settings.azure_api_key or "",
            "AZURE_API_BASE": _clean(os.environ.get("AZURE_API_BASE")) or settings.azure_endpoint or "",
            "AZURE_API_VERSION": _clean(os.environ.get("AZURE_API_VERSION")) or settings.api_version or "",
        }
        missing = [k for k, v in env.items() if not v]
        if missing:
            raise ConfigError(f"the judge {uri} needs {', '.join(missing)} (or AZURE_OPENAI_API_KEY and "
                              "AZURE_OPENAI_ENDPOINT, from which they are derived)")
        if not env["AZURE_API_BASE"].startswith(("http://", "https://")):
            raise ConfigError("AZURE_API_BASE must start with https:// (or http:// for a local server)")
        return JudgeSetup(uri, uri, env)
    if provider == "openai":
        key = _clean(os.environ.get("OPENAI_API_KEY")) or settings.openai_api_key
        if not key:
            raise ConfigError(f"the judge {uri} needs OPENAI_API_KEY (any value for a local server)")
        env = {"OPENAI_API_KEY": key}
        base = _clean(os.environ.get("OPENAI_API_BASE")) or settings.openai_base_url
        if base:
            env["OPENAI_BASE_URL"] = base
            env["OPENAI_API_BASE"] = base  # MLflow prefers OPENAI_API_BASE: keep the two in step
        return JudgeSetup(uri, uri, env)
    if provider == "local":
        from core import local_model

        judge_env = getattr(local_model, "judge_env", None)
        if judge_env is None:
            raise ConfigError("the local judge is not available in this version: use azure:/ or openai:/")
        name = name or "smollm2"
        mlflow_uri = local_model.judge_uri(name) if hasattr(local_model, "judge_uri") else f"openai:/{name}"
        warning = getattr(local_model, "DEMO_WARNING", "local:/smollm2 is a tiny demo model")
        return JudgeSetup(f"local:/{name}", mlflow_uri, dict(judge_env(name)), (warning,))
    # Another MLflow provider (anthropic:/, gemini:/ ...): MLflow reads its own variables for it.
    return JudgeSetup(uri, uri, {}, (f"judge {uri}: its credentials are read by MLflow from that provider's "
                                     "variables; Proctor only checks azure:/ and openai:/ judges",))


def same_model(judge_uri: str, model_uri: str) -> bool:
    def name(uri: str) -> str:
        return uri.partition(":")[2].strip("/ ").lower() or uri.lower()

    return bool(model_uri) and (judge_uri.lower() == model_uri.lower() or name(judge_uri) == name(model_uri))


def prefer_json_object(judge_setup: JudgeSetup | None) -> None:
    # The local llama.cpp server answers 500 (not 400) to a json_schema response_format, so MLflow never learns
    # to drop it and retries for minutes. Tell MLflow's adapter up front, as it would have learnt from a 400.
    if judge_setup is None or not judge_setup.uri.startswith("local:"):
        return
    try:
        from mlflow.genai.judges.adapters import gateway_adapter

        provider, _, name = judge_setup.mlflow_uri.partition(":/")
        gateway_adapter._MODEL_RESPONSE_FORMAT_CAPABILITIES[f"{provider}/{name}"] = False
    except (ImportError, AttributeError):  # pragma: no cover - a later MLflow may learn this differently
        pass
