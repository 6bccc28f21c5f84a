"""Proctor's headless core: every LLM and MLflow call lives here, and nothing here imports Textual.

Heavy libraries (openai, mlflow, pandas) are imported inside the functions that need them, so that importing
`core` stays cheap and the app can draw its first frame before they load.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "llm_query"]


def llm_query(question: str, model: str | None = None) -> str:
    """Ask the model one question and return its answer as text (the course's simplest entry point).

    `model` is a model URI (`azure:/DEPLOYMENT`, `openai:/MODEL`, `local:/smollm2`); without it, the configured
    default (see `core.config.Settings.default_model`). Raises `core.errors.ProctorError` on a bad setting and
    `core.errors.LLMError` when the model fails after its retries.
    """
    from core.llm import llm_query as _llm_query

    return _llm_query(question, model=model)
