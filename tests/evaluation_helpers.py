"""Helpers shared by the evaluate tests: a benchmark, and a fake-server responder that is both model and judge.

As the model: `gpt-4.1-mini` always answers right; any other model (gpt-4.1-nano) answers right only the
questions whose number is even. As the judge: it reads MLflow's real Correctness prompt (`<claim>` = the reference,
`<document>` = "INPUTS - OUTPUT") and says yes when the claim appears in the output part, as JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

QUESTIONS = [(f"Question {i}: what is {i} times 7?", str(i * 7)) for i in range(1, 9)]


def write_benchmark(path: Path, rows: list[tuple[str, str]] | None = None) -> Path:
    lines = ["question,answer"] + [f"{q},{a}" for q, a in (rows or QUESTIONS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def is_judge_request(body: dict[str, Any]) -> bool:
    text = json.dumps(body.get("messages") or [])
    return "<claim>" in text


def judge_verdict(prompt: str) -> str:
    claim = re.search(r"<claim>(.*?)</claim>", prompt, re.S)
    document = re.search(r"<document>(.*?)</document>", prompt, re.S)
    if not claim or not document:
        return json.dumps({"result": "no", "rationale": "no claim or document found"})
    # The document is "{'question': ...} - OUTPUT": judge the output part only.
    output = document.group(1).split("} - ", 1)[-1]
    ok = re.search(rf"\b{re.escape(claim.group(1).strip())}\b", output) is not None
    return json.dumps({"result": "yes" if ok else "no",
                       "rationale": f"The claim is {'supported' if ok else 'not supported'} by the output."})


def model_answer(model: str, question: str) -> str:
    match = re.search(r"Question (\d+)", question)
    n = int(match.group(1)) if match else 0
    if model.endswith("mini") or n % 2 == 0:
        return f"It is {n * 7}."
    return "I am not sure."


def responder(body: dict[str, Any], info: Any) -> str:
    """Answer as a judge when MLflow's Correctness prompt arrives, else as the model under test."""
    if is_judge_request(body):
        return judge_verdict(info.question)
    return model_answer(info.model, info.question)
