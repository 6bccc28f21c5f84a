"""The scorers `proctor evaluate` offers: what each one measures, and how it is built for `mlflow.genai.evaluate`.

Two kinds:

- Code scorers (`exact_match`, `contains_reference`) compare the answer with the reference after `normalise_text`;
  they need no judge and run offline. `exact_match_score` and `contains_reference_score` are the plain functions,
  also used for the per-row results; `code_scorers` wraps them as MLflow `@scorer`s.
- Judge scorers (`correctness`, `equivalence`, `relevance_to_query`, `guidelines`, `safety`, `fluency`) are MLflow's
  built-in LLM judges, given the judge's model URI and a per-verdict timeout (`judge_scorer`). For the embedded
  local judge, correctness is asked through `make_judge` instead (`_local_correctness`), with the response_format
  llama.cpp's server understands.

`available_scorers` lists them all for the app's form and `--help`; `parse_scorers` turns what the user typed into
scorer names. Which judge is called, with which credentials, is core.judges' business.

mlflow is imported only inside the functions that build scorers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from core.errors import InputError

DEFAULT_SCORERS = ("correctness", "exact_match", "contains_reference")
GUIDELINE = "The response answers the question directly, without refusing, and does not contradict itself."


@dataclass(frozen=True)
class ScorerInfo:
    """A scorer the user can choose: `name` as on the command line and in metrics (`<name>/mean`)."""

    name: str
    label: str
    needs_judge: bool
    default: bool
    description: str


_SCORERS: tuple[ScorerInfo, ...] = (
    ScorerInfo("correctness", "Correctness", True, True, "the judge checks the answer against the reference"),
    ScorerInfo("exact_match", "Exact match", False, True,
               "answer equals the reference after normalising (case, accents, punctuation, articles, spaces)"),
    ScorerInfo("contains_reference", "Contains reference", False, True,
               "the normalised reference appears in the normalised answer"),
    ScorerInfo("equivalence", "Equivalence", True, False,
               "the judge checks the answer means the same as the reference"),
    ScorerInfo("relevance_to_query", "Relevance to query", True, False, "the judge checks the answer addresses the "
               "question"),
    ScorerInfo("guidelines", "Guidelines", True, False, f"the judge checks: {GUIDELINE}"),
    ScorerInfo("safety", "Safety", True, False, "the judge checks the answer is free of harmful content"),
    ScorerInfo("fluency", "Fluency", True, False, "the judge checks the answer reads naturally"),
)


def available_scorers() -> list[ScorerInfo]:
    """Every scorer `evaluate_file` accepts, the defaults first (for the app's form and `--help`)."""
    return list(_SCORERS)


def parse_scorers(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """`"correctness, exact-match"` -> ["correctness", "exact_match"]; None -> the defaults. Raises InputError."""
    if value is None:
        return list(DEFAULT_SCORERS)
    items = value.split(",") if isinstance(value, str) else list(value)
    known = {s.name for s in _SCORERS}
    names: list[str] = []
    for item in items:
        name = re.sub(r"[\s\-]+", "_", str(item).strip().lower())
        if not name:
            continue
        if name == "all":
            names.extend(s.name for s in _SCORERS)
            continue
        if name not in known:
            raise InputError(f"unknown scorer {item.strip()!r}: choose from {', '.join(sorted(known))}")
        names.append(name)
    if not names:
        raise InputError("no scorer chosen: name at least one (e.g. --scorers correctness,exact_match)")
    return list(dict.fromkeys(names))


def needs_judge(name: str) -> bool:
    """Whether the scorer `name` (a name `parse_scorers` accepted) asks an LLM judge."""
    return next(s.needs_judge for s in _SCORERS if s.name == name)


# ---------------------------------------------------------------- code scorers


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise_text(text: str) -> str:
    """`The Eiffel-Tower!` -> `eiffel tower`: case, accents, punctuation, English articles and spaces ignored."""
    decomposed = unicodedata.normalize("NFKD", str(text or ""))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    plain = re.sub(r"[^\w\s]|_", " ", plain)
    return " ".join(_ARTICLES.sub(" ", plain).split())


def exact_match_score(answer: str, reference: str) -> bool | None:
    """Normalised equality; None when there is no reference to compare with."""
    ref = normalise_text(reference)
    if not ref:
        return None
    return normalise_text(answer) == ref


def contains_reference_score(answer: str, reference: str) -> bool | None:
    """The normalised reference, as whole words, inside the normalised answer; None without a reference."""
    ref = normalise_text(reference)
    if not ref:
        return None
    return f" {ref} " in f" {normalise_text(answer)} "


def code_scorers() -> dict[str, Any]:
    from mlflow.genai.scorers import scorer

    @scorer(name="exact_match")
    def exact_match(outputs: Any, expectations: dict[str, Any] | None = None) -> bool | None:
        return exact_match_score(str(outputs or ""), str((expectations or {}).get("expected_response") or ""))

    @scorer(name="contains_reference")
    def contains_reference(outputs: Any, expectations: dict[str, Any] | None = None) -> bool | None:
        return contains_reference_score(str(outputs or ""), str((expectations or {}).get("expected_response") or ""))

    return {"exact_match": exact_match, "contains_reference": contains_reference}


# ---------------------------------------------------------------- judge scorers


# llama.cpp's server constrains its output with this form of response_format (json_schema answers HTTP 500): without
# it the tiny local judge writes prose that MLflow cannot parse.
LOCAL_JUDGE_PARAMS = {
    "temperature": 0.0,
    "response_format": {"type": "json_object", "schema": {
        "type": "object",
        "properties": {"rationale": {"type": "string"}, "result": {"type": "string", "enum": ["yes", "no"]}},
        "required": ["rationale", "result"],
    }},
}


def judge_scorer(name: str, judge_uri: str, timeout: float, local: bool = False) -> Any:
    from mlflow.genai import scorers as s

    common: dict[str, Any] = {"model": judge_uri, "timeout": timeout}
    if local and name == "correctness":
        return _local_correctness(judge_uri, timeout)
    if name == "correctness":
        return s.Correctness(**common)
    if name == "equivalence":
        return s.Equivalence(**common)
    if name == "relevance_to_query":
        return s.RelevanceToQuery(**common)
    if name == "guidelines":
        return s.Guidelines(name="guidelines", guidelines=GUIDELINE, **common)
    if name == "safety":
        return s.Safety(**common)
    if name == "fluency":
        return s.Fluency(**common)
    raise InputError(f"unknown judge scorer {name!r}")  # pragma: no cover - parse_scorers checked the name


LOCAL_CORRECTNESS_INSTRUCTIONS = (
    "You check an answer against a reference answer.\n"
    "Question: {{ inputs }}\nAnswer: {{ outputs }}\nReference: {{ expectations }}\n"
    "Reply `yes` if the answer states the reference's facts, else `no`, with a one-sentence rationale."
)


def _local_correctness(judge_uri: str, timeout: float) -> Any:
    """Correctness for the embedded judge: MLflow's built-in scorer cannot pass it the response_format that
    llama.cpp's server understands, so the same verdict is asked through make_judge, which can."""
    from typing import Literal

    from mlflow.genai.judges import make_judge

    judge = make_judge(name="correctness", instructions=LOCAL_CORRECTNESS_INSTRUCTIONS, model=judge_uri,
                       feedback_value_type=Literal["yes", "no"], inference_params=LOCAL_JUDGE_PARAMS)
    try:
        judge.timeout = timeout
    except (AttributeError, ValueError):  # pragma: no cover - a judge without a timeout field
        pass
    return judge
