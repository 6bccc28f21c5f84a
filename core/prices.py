"""What a run cost: token prices per model, from a table the user can edit, and the cost of a run's tokens.

Prices are US dollars per 1 million tokens, input (prompt) and output (completion) apart. The defaults below are the
course's models; `PROCTOR_PRICES` names a TOML or JSON file whose entries are added to them (and win over them):

    # prices.toml: USD per 1M tokens
    ["gpt-4.1-nano"]
    input = 0.10
    output = 0.40
    date = "2026-12-01"
    source = "https://developers.openai.com/api/docs/models/gpt-4.1-nano"

    ["azure:/my-nano-deployment"]      # a full model URI wins over the bare name
    input = 0.10
    output = 0.40

A model is looked up by its full URI (`azure:/gpt-4.1-nano`), then by its name (`gpt-4.1-nano`). A model with no
price has an unknown cost: `cost_usd` returns None and nothing is logged, so an unknown cost is never shown as 0.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError

PRICES_ENV = "PROCTOR_PRICES"


@dataclass(frozen=True)
class Price:
    """USD per 1 million tokens, with where the figure comes from and when it was read."""

    input: float
    output: float
    date: str = ""
    source: str = ""


_OPENAI_MODELS = "https://developers.openai.com/api/docs/models/"
_READ_ON = "2026-12-01"  # the day these defaults were read from the sources below

# The course's models at the standard (pay-as-you-go, global) rate, text tokens, no caching or batch discount.
# Azure OpenAI's global standard deployments list the same rates for these models; a regional or data-zone
# deployment costs more: put its price in PROCTOR_PRICES under its URI.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4.1-nano": Price(0.10, 0.40, _READ_ON, _OPENAI_MODELS + "gpt-4.1-nano"),
    "gpt-4.1-mini": Price(0.40, 1.60, _READ_ON, _OPENAI_MODELS + "gpt-4.1-mini"),
    "gpt-4.1": Price(2.00, 8.00, _READ_ON, _OPENAI_MODELS + "gpt-4.1"),
    # The embedded model runs on your own CPU: no per-token bill.
    "local:/smollm2": Price(0.0, 0.0, _READ_ON, "runs locally (core/local_model.py): no per-token price"),
}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where} must be a number of US dollars per 1M tokens (0 or more), not {value!r}")
    return float(value)


def _parse(data: Any, path: Path) -> dict[str, Price]:
    if isinstance(data, dict) and isinstance(data.get("models"), dict):
        data = data["models"]
    if not isinstance(data, dict):
        raise ConfigError(f"{PRICES_ENV} file {path} must map model names to {{input, output}} prices")
    prices: dict[str, Price] = {}
    for name, entry in data.items():
        where = f"{PRICES_ENV} file {path}: {name!r}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table with input and output (USD per 1M tokens)")
        missing = [k for k in ("input", "output") if k not in entry]
        if missing:
            raise ConfigError(f"{where} has no {' and '.join(missing)} price (USD per 1M tokens)")
        prices[str(name).strip()] = Price(_number(entry["input"], f"{where} input"),
                                          _number(entry["output"], f"{where} output"),
                                          str(entry.get("date", "")), str(entry.get("source", "")))
    return prices


def load_prices(path: str | os.PathLike[str] | None = None) -> dict[str, Price]:
    """The price table: the defaults, plus (and overridden by) the file at `path` or PROCTOR_PRICES.

    Raises `ConfigError` (exit 2) for a file that is missing, unreadable, or not a valid price table.
    """
    prices = dict(DEFAULT_PRICES)
    text = str(path) if path is not None else os.environ.get(PRICES_ENV, "").strip()
    if not text:
        return prices
    file = Path(text).expanduser()
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise ConfigError(f"{PRICES_ENV}={text}: cannot read the price file ({error.strerror or error})") from None
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8-sig"))
        else:
            import tomllib

            data = tomllib.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as error:
        kind = "JSON" if file.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"{PRICES_ENV} file {file} is not valid {kind}: "
                          f"{' '.join(str(error).split())[:200]}") from None
    prices.update(_parse(data, file))
    return prices


def price_for(model_uri: str, prices: dict[str, Price] | None = None) -> Price | None:
    """The price of `model_uri`: by its full URI, then by its bare name; None when unknown."""
    prices = load_prices() if prices is None else prices
    uri = (model_uri or "").strip()
    if not uri:
        return None
    if uri in prices:
        return prices[uri]
    provider, sep, name = uri.partition(":")
    name = name.strip("/ ") if sep else uri
    normalised = f"{provider.strip().lower()}:/{name}" if sep else uri
    return prices.get(normalised) or prices.get(name)


def cost_usd(model_uri: str, prompt_tokens: float | None, completion_tokens: float | None,
             prices: dict[str, Price] | None = None) -> float | None:
    """What these tokens cost with this model, in US dollars; None when the price or the token counts are unknown."""
    price = price_for(model_uri, prices)
    if price is None or prompt_tokens is None or completion_tokens is None:
        return None
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


def format_cost(value: float | None) -> str:
    """`$0.0042`, `$1.23`; "unknown" when there is no price (never "$0" for an unknown price)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    if value == 0:
        return "$0"
    if value < 0.0001:
        return "$" + f"{value:.8f}".rstrip("0")  # $0.0000009, not $9e-07
    if value < 0.01:
        return f"${value:.4f}"
    return f"${value:.2f}"


def summed_usage(metadatas: Iterable[Mapping[str, Any] | None], keys: tuple[str, str]) -> tuple[int, int] | None:
    """Prompt and completion tokens summed over the verdicts' metadata that carry both `keys` (the judge adapter's
    input and output token counts); None when no verdict reported them, so a cost shows as unknown, not zero."""
    prompt = completion = 0
    found = False
    for metadata in metadatas:
        metadata = metadata or {}
        if keys[0] in metadata and keys[1] in metadata:
            try:
                prompt += int(float(metadata[keys[0]]))
                completion += int(float(metadata[keys[1]]))
            except (TypeError, ValueError):
                continue
            found = True
    return (prompt, completion) if found else None
