"""core.prices: the default table, a user's TOML or JSON file over it, unknown prices kept unknown, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.prices import DEFAULT_PRICES, cost_usd, format_cost, load_prices, price_for


def test_defaults_cover_the_course_models_with_date_and_source() -> None:
    for name in ("gpt-4.1-nano", "gpt-4.1-mini"):
        price = DEFAULT_PRICES[name]
        assert price.date and price.source.startswith("https://")
    assert (DEFAULT_PRICES["gpt-4.1-nano"].input, DEFAULT_PRICES["gpt-4.1-nano"].output) == (0.10, 0.40)
    assert (DEFAULT_PRICES["gpt-4.1-mini"].input, DEFAULT_PRICES["gpt-4.1-mini"].output) == (0.40, 1.60)


def test_lookup_by_uri_then_name_and_cost() -> None:
    prices = load_prices()
    assert price_for("azure:/gpt-4.1-nano", prices) is DEFAULT_PRICES["gpt-4.1-nano"]
    assert price_for("openai:/gpt-4.1-mini", prices) is DEFAULT_PRICES["gpt-4.1-mini"]
    # 1,000 prompt + 500 completion tokens on nano: (1000 * 0.10 + 500 * 0.40) / 1e6 = $0.0003
    assert cost_usd("azure:/gpt-4.1-nano", 1000, 500, prices) == pytest.approx(0.0003)
    assert cost_usd("openai:/some-other-model", 1000, 500, prices) is None
    assert cost_usd("azure:/gpt-4.1-nano", None, 500, prices) is None


def test_unknown_is_never_shown_as_zero() -> None:
    assert format_cost(None) == "unknown"
    assert format_cost(0.0) == "$0"
    assert format_cost(0.0003) == "$0.0003"
    assert format_cost(12.345) == "$12.35"
    assert format_cost(9e-7) == "$0.0000009"  # a judge's delta on a small run: never "$9e-07"


def test_a_toml_file_adds_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "prices.toml"
    file.write_text('["gpt-4.1-nano"]\ninput = 0.2\noutput = 0.8\ndate = "2027-01-01"\nsource = "my contract"\n\n'
                    '["azure:/my-deployment"]\ninput = 1\noutput = 2\n', encoding="utf-8")
    monkeypatch.setenv("PROCTOR_PRICES", str(file))
    prices = load_prices()
    assert price_for("azure:/gpt-4.1-nano", prices).source == "my contract"
    assert cost_usd("azure:/my-deployment", 1_000_000, 1_000_000, prices) == pytest.approx(3.0)
    assert price_for("openai:/my-deployment", prices) is None, "a URI entry names that URI only"
    assert price_for("openai:/gpt-4.1-mini", prices) is DEFAULT_PRICES["gpt-4.1-mini"], "the defaults stay"


def test_a_json_file_under_models(tmp_path: Path) -> None:
    file = tmp_path / "prices.json"
    file.write_text(json.dumps({"models": {"my-model": {"input": 3, "output": 4}}}), encoding="utf-8")
    assert cost_usd("openai:/my-model", 1_000_000, 0, load_prices(file)) == pytest.approx(3.0)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("p.toml", "[x\n", "is not valid TOML"),
    ("p.json", "{", "is not valid JSON"),
    ("p.toml", '["m"]\ninput = 1\n', "has no output price"),
    ("p.toml", '["m"]\ninput = -1\noutput = 1\n', "must be a number"),
    ("p.toml", '["m"]\ninput = "cheap"\noutput = 1\n', "must be a number"),
    ("p.json", "[1, 2]", "must map model names"),
])
def test_bad_price_files_are_configuration_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_prices(file)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read the price file"):
        load_prices(tmp_path / "missing.toml")
