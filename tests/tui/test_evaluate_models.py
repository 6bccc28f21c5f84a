"""`proctor evaluate FILE -m A -m B`: several models answer at once, one judge, one run each tagged as one
comparison, then the paired comparison against the first model. End to end on the fake server and a real store."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY
from evaluation_helpers import QUESTIONS, is_judge_request, judge_verdict, model_answer, write_benchmark

from core.multi_eval import split_budget
from tui.cli import main


def test_the_budget_is_shared() -> None:
    assert split_budget(8, 2) == [4, 4]
    assert split_budget(8, 3) == [3, 3, 2]
    assert split_budget(2, 3) == [1, 1, 1]  # at least one each
    assert sum(split_budget(16, 5)) == 16


def test_two_models_in_one_command(tmp_path: Path, azure_env, tracking: str,  # noqa: ANN001
                                   capsys: pytest.CaptureFixture[str]) -> None:
    mini_seen = threading.Event()
    nano_waited: list[bool] = []
    first_nano = threading.Lock()

    def responder(body: dict[str, Any], info: Any) -> str:
        if is_judge_request(body):
            return judge_verdict(info.question)
        if info.model.endswith("mini"):
            mini_seen.set()
        elif first_nano.acquire(blocking=False):  # never released: only nano's first request waits
            # nano's first answer is held until mini has asked something: the models answer at once, not in turn.
            nano_waited.append(mini_seen.wait(30))
        return model_answer(info.model, info.question)

    azure_env.behaviour.responder = responder
    azure_env.behaviour.capacity = 4  # a quota of 4 in flight: a 429 would mean the budget was exceeded
    bench = write_benchmark(tmp_path / "bench.csv")
    code = main(["evaluate", str(bench), "-m", "azure:/gpt-4.1-nano", "-m", "azure:/gpt-4.1-mini",
                 "--judge", "azure:/gpt-4.1-nano", "--concurrency", "4", "-o", str(tmp_path / "results.csv")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert nano_waited == [True], "nano and mini were answering at the same time"
    assert azure_env.peak_in_flight <= 4 and all(i.status == 200 for i in azure_env.log), "one budget of 4"

    # Each model's answers file as `proctor answer` names it, and its -o results file.
    for name in ("azure-gpt-4.1-nano", "azure-gpt-4.1-mini"):  # the provider is part of the name
        assert (tmp_path / f"bench.answers.{name}.csv").exists()
        assert (tmp_path / f"results.{name}.csv").exists()
    answer_calls = [i for i in azure_env.log if "<claim>" not in i.question]
    assert sorted(i.model for i in answer_calls) == ["gpt-4.1-mini"] * 8 + ["gpt-4.1-nano"] * 8
    judge_calls = [i for i in azure_env.log if "<claim>" in i.question]
    assert {i.model for i in judge_calls} == {"gpt-4.1-nano"} and len(judge_calls) == 2 * len(QUESTIONS)

    # One run per model, one comparison tag, the first model as the baseline.
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name("proctor")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["gpt-4.1-mini", "gpt-4.1-nano"]
    tags = [r.data.tags for r in runs]
    assert len({t["proctor.comparison"] for t in tags}) == 1
    assert {t["proctor.comparison_baseline"] for t in tags} == {"azure:/gpt-4.1-nano"}
    assert all(t["proctor.judge"] == "azure:/gpt-4.1-nano" for t in tags)
    by_name = {r.info.run_name: r.data.metrics for r in runs}
    assert by_name["gpt-4.1-nano"]["accuracy"] == pytest.approx(0.5)  # the even questions only
    assert by_name["gpt-4.1-mini"]["accuracy"] == pytest.approx(1.0)
    assert by_name["gpt-4.1-mini"]["cost_usd"] > by_name["gpt-4.1-nano"]["cost_usd"] > 0
    comparison_id = tags[0]["proctor.comparison"]

    # Each model's summary, then the comparison against the first: 4 questions only mini got right, none the
    # other way: exact McNemar p = 2 * (1/2)^4 = 0.125, not significant at n = 8, so no "better".
    assert out.count("accuracy (errors count as wrong)") == 2
    assert f"proctor.comparison={comparison_id}" in out
    assert "== A azure:/gpt-4.1-nano vs B azure:/gpt-4.1-mini" in out
    assert "  accuracy: n 8, A only right 0, B only right 4, B - A +50.0 points" in out
    assert "B is ahead by 50.0 points (95% CI " in out
    assert "p = 0.12): not a detectable difference at n = 8; about " in out
    assert "better" not in out.split("== A azure:/gpt-4.1-nano vs B")[1]
    assert TEST_KEY not in out + err


def test_several_models_bad_input_exits_2_before_any_call(tmp_path: Path, azure_env,  # noqa: ANN001
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    bench = write_benchmark(tmp_path / "bench.csv")
    prices = tmp_path / "prices.toml"
    prices.write_text("[gpt-4.1-nano\n", encoding="utf-8")  # a bad price file: refused before any question
    for argv, message in (
        (["-m", "azure:/gpt-4.1-nano", "-m", "nope"], "is not a model URI"),
        (["-m", "azure:/gpt-4.1-nano", "-m", "azure:/gpt-4.1-mini", "--judge", "openai:/x"], "needs OPENAI_API_KEY"),
        (["-m", "azure:/gpt-4.1-nano", "-m", "azure:/gpt-4.1-mini", "--concurrency", "0"], "at least 1"),
        (["-m", "azure:/gpt-4.1-nano", "-m", "azure:/gpt-4.1-mini", "--judge", "none"], "is not valid TOML"),
        (["-m", "azure:/gpt-4.1-mini", "--judge", "none"], "is not valid TOML"),
    ):
        if "none" in argv:
            monkeypatch.setenv("PROCTOR_PRICES", str(prices))
        code = main(["evaluate", str(bench), *argv])
        _, err = capsys.readouterr()
        assert code == 2, err
        assert err.startswith("proctor: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert azure_env.log == []
