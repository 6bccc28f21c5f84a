"""core.evaluation against the fake server as the model AND the judge, with a real sqlite MLflow store.

One store serves the whole module (its first migration takes ~9 s); every run is read back through MlflowClient.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import TEST_KEY
from evaluation_helpers import QUESTIONS, responder, write_benchmark

from core.config import Settings
from core.errors import ConfigError, InputError
from core.evaluation import EvaluationCancelled, evaluate_file
from core.judges import resolve_judge
from core.scorers import available_scorers, contains_reference_score, exact_match_score, normalise_text, parse_scorers


@pytest.fixture
def azure(azure_env, tracking):  # noqa: ANN001, ANN201 - fixtures
    azure_env.behaviour.responder = responder
    return azure_env


def _client():  # noqa: ANN202
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def _artifact_text(run_id: str, path: str) -> str:
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)).read_text("utf-8-sig")


# ---------------------------------------------------------------- pure helpers


def test_normalised_scores() -> None:
    assert normalise_text("The Eiffel-Tower!") == "eiffel tower"
    assert normalise_text("  Réponse  ") == "reponse"
    assert exact_match_score("Paris.", "paris") is True
    assert exact_match_score("It is Paris", "Paris") is False
    assert contains_reference_score("It is Paris.", "paris") is True
    assert contains_reference_score("It is 140.", "14") is False  # whole words only
    assert exact_match_score("x", "") is None


def test_parse_scorers() -> None:
    assert parse_scorers(None) == ["correctness", "exact_match", "contains_reference"]
    assert parse_scorers("Correctness, exact-match") == ["correctness", "exact_match"]
    assert "relevance_to_query" in parse_scorers("all")
    with pytest.raises(InputError, match="unknown scorer"):
        parse_scorers("bleu")
    names = [s.name for s in available_scorers()]
    assert names[:3] == ["correctness", "exact_match", "contains_reference"]


def test_scorer_and_judge_names_live_in_their_own_modules_only() -> None:
    """evaluation.py uses the shared helpers through their public names and re-exports none of them."""
    import core.evaluation
    import core.judges
    import core.scorers

    for name in ["code_scorers", "judge_scorer", "needs_judge", "parse_scorers", "available_scorers"]:
        assert callable(getattr(core.scorers, name))
    for name in ["same_model", "prefer_json_object", "resolve_judge", "default_judge"]:
        assert callable(getattr(core.judges, name))
    for name in ["available_scorers", "DEFAULT_SCORERS", "ScorerInfo", "default_judge", "DEFAULT_AZURE_JUDGE"]:
        assert name not in core.evaluation.__all__
    assert core.judges.same_model("azure:/gpt-4.1-nano", "openai:/gpt-4.1-nano")
    assert not core.judges.same_model("azure:/gpt-4.1-nano", "azure:/gpt-4.1-mini")


def test_azure_judge_credentials_derived_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(azure_endpoint="https://r.openai.azure.com/", azure_api_key="k-123456789",
                        azure_deployment="gpt-4.1-nano")
    judge = resolve_judge(None, settings)
    assert judge is not None and judge.uri == "azure:/gpt-4.1-nano"
    assert judge.env == {"AZURE_API_KEY": "k-123456789", "AZURE_API_BASE": "https://r.openai.azure.com/",
                         "AZURE_API_VERSION": settings.api_version}
    assert "k-123456789" not in repr(judge)
    # MLflow's own variables win when set (a judge on another resource).
    monkeypatch.setenv("AZURE_API_BASE", "https://other.openai.azure.com/")
    assert resolve_judge("azure:/gpt-4.1-mini", settings).env["AZURE_API_BASE"] == "https://other.openai.azure.com/"


def test_judge_settings_errors() -> None:
    assert resolve_judge(None, Settings()) is None  # nothing configured: code scorers only
    assert resolve_judge("none", Settings(judge="azure:/x")) is None
    with pytest.raises(ConfigError, match="AZURE_API_KEY"):
        resolve_judge("azure:/gpt-4.1-nano", Settings())
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        resolve_judge("openai:/gpt-4.1-nano", Settings())
    with pytest.raises(ConfigError, match="not a model URI"):
        resolve_judge("gpt-4.1-nano", Settings())


def test_bad_input_fails_before_any_run(tmp_path: Path, azure, tracking: str) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match="no such file"):
        evaluate_file(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="no question column"):
        evaluate_file(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="unknown scorer"):
        evaluate_file(write_benchmark(tmp_path / "b.csv"), scorers="bleu")
    assert azure.log == []  # nothing was asked


# ---------------------------------------------------------------- end to end


def test_benchmark_azure_model_and_judge(tmp_path: Path, azure, tracking: str) -> None:  # noqa: ANN001
    bench = write_benchmark(tmp_path / "bench.csv")
    phases: list[str] = []
    summary = evaluate_file(bench, output=tmp_path / "results.csv", on_progress=lambda p: phases.append(p.phase))

    assert {"reading", "answering", "judging", "logging", "done"} <= set(phases)
    assert summary.tracking_uri == tracking
    judge_calls = [i for i in azure.log if i.route == "azure" and "<claim>" in i.question]
    assert len(judge_calls) == len(QUESTIONS)  # the judge, in the Azure style, once per row
    assert all(i.api_version for i in judge_calls)

    run = _client().get_run(summary.run_id)
    assert run.info.run_name == "gpt-4.1-nano"
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model_uri"] == "azure:/gpt-4.1-nano"
    assert params["provider"] == "azure" and params["deployment"] == "gpt-4.1-nano"
    assert params["api_version"] == "2024-02-15-preview"
    assert params["judge"] == "azure:/gpt-4.1-nano"
    assert params["scorers"] == "correctness,exact_match,contains_reference"
    assert params["dataset_name"] == "bench.csv" and params["dataset_rows"] == str(len(QUESTIONS))
    assert len(params["dataset_hash"]) == 16
    assert params["temperature"] == "0" and params["judge_timeout_s"] == "30"
    tags = run.data.tags
    assert tags["proctor.kind"] == "evaluation" and tags["proctor.model"] == "azure:/gpt-4.1-nano"
    assert tags["proctor.judge"] == "azure:/gpt-4.1-nano" and tags["proctor.dataset"] == "bench.csv"
    assert "proctor.version" in tags
    metrics = run.data.metrics
    assert metrics["correctness/mean"] == pytest.approx(0.5)  # nano: the even questions only
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["contains_reference/mean"] == pytest.approx(0.5)
    assert metrics["exact_match/mean"] == 0.0
    assert metrics["judge_errors"] == 0 and metrics["answer_errors"] == 0 and metrics["rows"] == len(QUESTIONS)
    assert metrics["latency_mean_s"] > 0 and metrics["latency_p95_s"] >= metrics["latency_mean_s"]
    assert metrics["prompt_tokens"] > 0 and metrics["completion_tokens"] > 0
    assert any("model under test" in w for w in summary.warnings)  # judge == model
    # Every share with its 95% Wilson interval (4 of 8: 0.2152-0.7848; 0 of 8: 0-0.3244), over the rows it counts.
    assert (metrics["accuracy_ci_low"], metrics["accuracy_ci_high"]) == pytest.approx((0.2152, 0.7848), abs=1e-4)
    assert (metrics["correctness/ci_low"], metrics["correctness/ci_high"]) == pytest.approx((0.2152, 0.7848),
                                                                                            abs=1e-4)
    assert (metrics["exact_match/ci_low"], metrics["exact_match/ci_high"]) == pytest.approx((0.0, 0.3244), abs=1e-4)
    # The answers' cost at gpt-4.1-nano's price ($0.10 / $0.40 per 1M tokens); the judge's from the usage its
    # server reported to MLflow on every verdict.
    assert metrics["cost_usd"] == pytest.approx((metrics["prompt_tokens"] * 0.10
                                                 + metrics["completion_tokens"] * 0.40) / 1e6)
    assert metrics["judge_prompt_tokens"] > 0 and metrics["judge_completion_tokens"] > 0
    assert metrics["judge_cost_usd"] == pytest.approx((metrics["judge_prompt_tokens"] * 0.10
                                                       + metrics["judge_completion_tokens"] * 0.40) / 1e6)
    assert tags["proctor.accuracy_from"] == "correctness"

    artifacts = {a.path for a in _client().list_artifacts(summary.run_id, "inputs")}
    assert artifacts == {"inputs/bench.csv"}
    import io

    import pandas as pd

    results = pd.read_csv(io.StringIO(_artifact_text(summary.run_id, "results/results.csv")), dtype=str,
                          keep_default_na=False)
    assert list(results.columns) == ["row", "question", "reference", "llm_answer", "model", "judge_verdict",
                                     "judge_rationale", "judge_error", "exact_match", "contains_reference",
                                     "latency_s", "answer_error", "trace_id"]
    assert results["trace_id"].str.startswith("tr-").all()
    assert results["row"].tolist() == [str(i) for i in range(1, len(QUESTIONS) + 1)]
    assert results["judge_verdict"].tolist() == ["incorrect", "correct"] * (len(QUESTIONS) // 2)
    assert results["judge_rationale"][1].startswith("The claim is supported")

    out = pd.read_csv(tmp_path / "results.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(out.columns)[:2] == ["question", "answer"]
    assert {"llm_answer", "model", "judge_verdict", "judge_rationale", "judge_error", "exact_match",
            "contains_reference"} <= set(out.columns)
    assert out["judge_verdict"].tolist() == results["judge_verdict"].tolist()


def test_course_comparison_nano_vs_mini(tmp_path: Path, azure, tracking: str) -> None:  # noqa: ANN001
    """The course's comparison: two model URIs, one judge (gpt-4.1-nano); mini is right more often."""
    bench = write_benchmark(tmp_path / "course.csv")
    judge = "azure:/gpt-4.1-nano"
    nano = evaluate_file(bench, model="azure:/gpt-4.1-nano", judge=judge, experiment="course")
    mini = evaluate_file(bench, model="azure:/gpt-4.1-mini", judge=judge, experiment="course")
    assert mini.metrics["accuracy"] == pytest.approx(1.0)
    assert nano.metrics["accuracy"] == pytest.approx(0.5)
    assert not any("model under test" in w for w in mini.warnings)

    client = _client()
    exp = client.get_experiment_by_name("course")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.info.run_name for r in runs] == ["gpt-4.1-nano", "gpt-4.1-mini"]
    assert {r.data.params["judge"] for r in runs} == {judge}
    assert runs[1].data.metrics["correctness/mean"] > runs[0].data.metrics["correctness/mean"]


def test_answers_file_openai_style_makes_no_model_call(tmp_path: Path, openai_env, tracking: str) -> None:  # noqa: ANN001
    openai_env.behaviour.responder = responder
    answers = tmp_path / "answers.csv"
    answers.write_text(
        "question,answer,llm_answer,model,latency_s,prompt_tokens,completion_tokens,error,human_verdict\n"
        "Capital of France?,Paris,It is Paris.,openai:/gpt-4.1-mini,0.5,10,3,,correct\n"
        "Capital of Italy?,Rome,I think Milan.,openai:/gpt-4.1-mini,1.5,10,3,,incorrect\n"
        "Capital of Spain?,Madrid,,openai:/gpt-4.1-mini,,,,HTTP 429: Rate limit reached,\n"
        "Capital of Peru?,Lima,Lima,openai:/gpt-4.1-mini,1.0,10,1,,incorrect\n",
        encoding="utf-8",
    )
    summary = evaluate_file(answers, judge="openai:/gpt-4.1-nano", output=tmp_path / "judged.csv")
    assert openai_env.log and all(is_judge_request_info(i) for i in openai_env.log)  # judged, never re-asked
    assert all(i.route == "openai" and i.model == "gpt-4.1-nano" for i in openai_env.log)
    assert len(openai_env.log) == 3  # the failed answer is not sent to the judge

    m = summary.metrics
    assert m["rows"] == 4 and m["answer_errors"] == 1 and m["judge_errors"] == 0
    assert m["accuracy"] == pytest.approx(2 / 4)  # the failed answer counts as a failure
    assert m["correctness/mean"] == pytest.approx(2 / 3)  # evaluate leaves it out
    assert m["latency_mean_s"] == pytest.approx(1.0) and m["prompt_tokens"] == 30
    # humans: correct, incorrect, -, incorrect; judge: correct, incorrect, -, correct
    assert m["human_accuracy"] == pytest.approx(1 / 3)
    assert m["judge_human_agreement"] == pytest.approx(2 / 3)
    assert "judge_human_kappa" in m

    run = _client().get_run(summary.run_id)
    assert run.info.run_name == "gpt-4.1-mini"  # from the file's model column
    assert run.data.params["model_uri"] == "openai:/gpt-4.1-mini"
    assert run.data.params["judge"] == "openai:/gpt-4.1-nano"
    rows = summary.results.to_dict("records")
    assert rows[2]["answer_error"].startswith("HTTP 429") and rows[2]["judge_error"] == "not judged: no answer"
    assert "human_verdict" in summary.results.columns

    import pandas as pd

    judged = pd.read_csv(tmp_path / "judged.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert judged["human_verdict"].tolist() == ["correct", "incorrect", "", "incorrect"]
    assert judged["judge_verdict"].tolist() == ["correct", "incorrect", "", "correct"]


def is_judge_request_info(info) -> bool:  # noqa: ANN001
    return "<claim>" in info.question


def test_no_judge_runs_code_scorers_only(tmp_path: Path, openai_env, tracking: str) -> None:  # noqa: ANN001
    openai_env.behaviour.responder = responder
    bench = write_benchmark(tmp_path / "b.csv", [("Question 2: what is 2 times 7?", "It is 14."),
                                                 ("Question 3: what is 3 times 7?", "21")])
    summary = evaluate_file(bench)
    assert summary.judge is None and summary.scorers == ["exact_match", "contains_reference"]
    assert any("Correctness needs a judge" in w for w in summary.warnings)
    assert summary.metrics["accuracy"] == pytest.approx(0.5)  # from exact_match without a judge
    assert summary.metrics["exact_match/mean"] == pytest.approx(0.5)
    assert openai_env.log and not any(is_judge_request_info(i) for i in openai_env.log)  # no judge asked
    run = _client().get_run(summary.run_id)
    assert run.data.tags["proctor.judge"] == "none" and run.data.params["judge"] == "none"
    assert run.info.run_name == "gpt-4.1-mini"
    # No judge, no judge cost; the answers' cost at gpt-4.1-mini's price.
    assert "judge_cost_usd" not in run.data.metrics and run.data.metrics["cost_usd"] > 0


def test_judge_answering_429_is_bounded_and_counted(tmp_path: Path, openai_env, tracking: str) -> None:  # noqa: ANN001
    answers = tmp_path / "answers.csv"
    answers.write_text("question,answer,llm_answer,model\n" + "".join(
        f"Q{i}?,{i},{i},openai:/gpt-4.1-mini\n" for i in range(4)), encoding="utf-8")
    openai_env.behaviour.fail_rate = 1.0
    openai_env.behaviour.fail_statuses = (429,)
    started = time.perf_counter()
    summary = evaluate_file(answers, judge="openai:/gpt-4.1-nano", judge_timeout=3)
    took = time.perf_counter() - started
    # Unbounded, MLflow's own retries hold each row for about 184 s; bounded by the 3 s verdict timeout it is seconds.
    # The margin between the two is wide on purpose: on a loaded 2-core machine the bounded run took over 20 s.
    assert took < 150, f"a judge answering 429 held the evaluation {took:.0f} s"
    assert summary.metrics["judge_errors"] == 4 and summary.metrics["accuracy"] == 0.0
    assert "correctness/mean" not in summary.metrics  # every verdict failed: evaluate logs no mean
    errors = summary.results["judge_error"].tolist()
    assert all("no verdict within 3 s" in e for e in errors)
    assert summary.results["judge_verdict"].tolist() == [""] * 4


def test_judge_bad_json_is_a_row_error(tmp_path: Path, openai_env, tracking: str) -> None:  # noqa: ANN001
    openai_env.behaviour.responder = lambda body, info: "Sure! The answer looks right to me."
    answers = tmp_path / "answers.csv"
    answers.write_text("question,answer,llm_answer,model\nQ?,Paris,Paris,openai:/m\nR?,Rome,Milan,openai:/m\n",
                       encoding="utf-8")
    summary = evaluate_file(answers, judge="openai:/judge-model")
    assert summary.metrics["judge_errors"] == 2
    assert all("Failed to parse response from judge" in e for e in summary.results["judge_error"])
    assert summary.metrics["exact_match/mean"] == pytest.approx(0.5)  # code scorers unaffected


def test_cancel_while_judging_marks_the_run_killed(tmp_path: Path, azure, tracking: str) -> None:  # noqa: ANN001
    azure.behaviour.latency = 0.05
    bench = write_benchmark(tmp_path / "bench.csv")
    cancel = threading.Event()

    def progress(p) -> None:  # noqa: ANN001
        if p.phase == "judging" and p.done >= 1:
            cancel.set()

    with pytest.raises(EvaluationCancelled, match="KILLED"):
        evaluate_file(bench, model="azure:/gpt-4.1-mini", experiment="cancelled", on_progress=progress,
                      cancel=cancel)
    client = _client()
    exp = client.get_experiment_by_name("cancelled")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags["proctor.failure"] == "cancelled"  # the reason, on the run and in its note
    assert run.data.tags["mlflow.note.content"] == "Proctor: KILLED: cancelled"


def test_no_key_anywhere_in_the_store_or_artifacts(mlflow_store: Path, tracking: str, tmp_path: Path) -> None:
    """Runs logged by the tests above, with TEST_KEY as both model and judge key: the key is nowhere."""
    client = _client()
    experiments = client.search_experiments()
    assert experiments, "the tests above logged nothing"
    needle = TEST_KEY.encode()
    scanned = 0
    places = [mlflow_store] + [Path(e.artifact_location.removeprefix("file://")) for e in experiments]
    for place in places:
        if not place.exists():
            continue
        for file in [place] if place.is_file() else place.rglob("*"):
            if file.is_file():
                data = file.read_bytes()
                scanned += 1
                assert needle not in data, f"the API key leaked into {file}"
    assert scanned >= 3


def test_a_second_evaluation_reuses_the_answers_unless_fresh(tmp_path: Path, azure, tracking: str) -> None:  # noqa: ANN001
    bench = write_benchmark(tmp_path / "bench.csv", QUESTIONS[:3])

    def model_calls() -> int:
        return sum(1 for i in azure.log if "<claim>" not in i.question)

    evaluate_file(bench, judge="none")
    assert model_calls() == 3
    again = evaluate_file(bench, judge="none")
    assert model_calls() == 3  # answered from bench.answers.azure-gpt-4.1-nano.csv, no new model call
    assert any("reused" in w and "--fresh" in w for w in again.warnings)
    evaluate_file(bench, judge="none", fresh=True)
    assert model_calls() == 6


def test_evaluating_a_grown_benchmark_keeps_the_verdicts_on_its_answers(tmp_path: Path, azure, tracking: str) -> None:  # noqa: ANN001
    """evaluate BENCH.csv answers through answer_benchmark: rows matched by text, verdicts stay with their answers."""
    from core.csvio import read_table
    from core.grading import GradingSession

    def model_calls() -> int:
        return sum(1 for i in azure.log if "<claim>" not in i.question)

    bench = write_benchmark(tmp_path / "bench.csv", QUESTIONS[:3])
    first = evaluate_file(bench, judge="none")
    with GradingSession(first.answers_file) as session:
        session.set_verdict(2, "correct", note="checked")
    graded = session.question(2)
    write_benchmark(bench, [QUESTIONS[3], *QUESTIONS[:3]])  # a question inserted at the top
    asked = model_calls()
    again = evaluate_file(bench, judge="none")
    assert model_calls() - asked == 1, "only the new question was asked"
    frame = read_table(again.answers_file)
    row = frame["question"].tolist().index(graded)
    assert row == 3 and (frame["human_verdict"][row], frame["human_note"][row]) == ("correct", "checked")
    assert again.metrics["human_accuracy"] == 1.0


# ---------------------------------------------------------------- a store locked mid-run; re-runs (issue 10)


def _answers_file(path: Path, rows: list[tuple[str, str]], extra: dict[int, dict[str, str]] | None = None) -> Path:
    """An answers CSV in which every answer is right; `extra` adds cells (e.g. an earlier judge's) to some rows."""
    import csv

    columns = ["question", "answer", "llm_answer", "model", "judge_verdict", "judge_rationale", "judge"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for i, (question, answer) in enumerate(rows):
            writer.writerow({"question": question, "answer": answer, "llm_answer": f"It is {answer}.",
                             "model": "azure:/gpt-4.1-mini", **(extra or {}).get(i, {})})
    return path


def _judge_calls(server) -> int:  # noqa: ANN001
    return sum(1 for item in server.log if "<claim>" in item.question)


def test_a_store_locked_mid_run_keeps_every_verdict(tmp_path: Path, azure, tracking: str,  # noqa: ANN001
                                                    mlflow_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer takes the store as the judge starts and holds it past MLflow's own 20 s wait."""
    import sqlite3

    from core.csvio import read_table
    from core.store import StoreError

    azure.behaviour.latency = 0.2
    monkeypatch.setenv("PROCTOR_STORE_WAIT", "120")
    answers = _answers_file(tmp_path / "answers.csv", [(q, a) for q, a in QUESTIONS])
    out = tmp_path / "results.csv"
    state = {"locked_during_run": False, "done": False}

    def hold_the_store() -> None:
        while not _judge_calls(azure):
            time.sleep(0.02)
        con = sqlite3.connect(mlflow_store / "mlflow.db", timeout=60, isolation_level=None)
        con.execute("BEGIN EXCLUSIVE")
        state["locked_during_run"] = not state["done"]
        time.sleep(25)
        con.execute("COMMIT")
        con.close()

    holder = threading.Thread(target=hold_the_store)
    holder.start()
    try:
        summary = evaluate_file(answers, judge="azure:/gpt-4.1-nano", scorers="correctness", output=out,
                                experiment="locked")
        assert summary.metrics["accuracy"] == 1.0
    except StoreError as error:  # the run could not be finished in the store: the verdicts are kept all the same
        assert "8 verdict(s) obtained are kept" in str(error), error
    finally:
        state["done"] = True
        holder.join()
    assert state["locked_during_run"], "the lock came too late: the test proved nothing"
    for place in (out, answers):  # -o, and the answers file judged (whence a re-run reuses them)
        kept = read_table(place)
        assert len(kept) == len(QUESTIONS) and (kept["judge_verdict"] == "correct").all(), place


def test_a_rerun_judges_only_the_rows_missing_a_verdict(tmp_path: Path, azure, tracking: str) -> None:  # noqa: ANN001
    judge = "azure:/gpt-4.1-nano"
    earlier = {i: {"judge_verdict": "correct", "judge_rationale": "checked before", "judge": judge} for i in range(5)}
    earlier[5] = {"judge_verdict": "correct", "judge": "azure:/another-judge"}  # another judge's verdict: asked again
    answers = _answers_file(tmp_path / "answers.csv", QUESTIONS, earlier)
    summary = evaluate_file(answers, judge=judge, experiment="rerun")
    assert _judge_calls(azure) == 3
    assert any("5 verdict(s) by azure:/gpt-4.1-nano reused" in w and "--fresh" in w for w in summary.warnings)
    assert summary.metrics["accuracy"] == 1.0 and summary.metrics["correctness/mean"] == 1.0
    assert summary.metrics["exact_match/mean"] == 0.0  # "It is 7." is not "7": over all 8 rows, not just 3
    assert summary.results["judge_rationale"].tolist()[:5] == ["checked before"] * 5
    evaluate_file(answers, judge=judge, experiment="rerun", fresh=True)
    assert _judge_calls(azure) == 3 + len(QUESTIONS)


def test_verdicts_written_after_a_run_are_reused_by_the_next(tmp_path: Path, azure, tracking: str) -> None:  # noqa: ANN001
    answers = _answers_file(tmp_path / "answers.csv", QUESTIONS[:3])
    evaluate_file(answers, judge="azure:/gpt-4.1-nano", experiment="reuse")
    assert _judge_calls(azure) == 3  # the judge's columns are now in answers.csv
    again = evaluate_file(answers, judge="azure:/gpt-4.1-nano", experiment="reuse")
    assert _judge_calls(azure) == 3 and again.metrics["accuracy"] == 1.0
    assert any("3 verdict(s) by azure:/gpt-4.1-nano reused" in w for w in again.warnings)


def test_judging_progress_reports_the_running_accuracy(tmp_path: Path, azure_env, monkeypatch) -> None:  # noqa: ANN001
    from core.evaluation import evaluate_file

    azure_env.behaviour.responder = responder
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    write_benchmark(tmp_path / "bench.csv")
    seen = []
    summary = evaluate_file(tmp_path / "bench.csv", model="azure:/gpt-4.1-mini", judge="azure:/gpt-4.1-nano",
                            scorers="correctness", on_progress=seen.append)
    judging = [p for p in seen if p.phase == "judging" and p.scored]
    assert judging, "no judging progress carried a verdict count"
    last = judging[-1]
    assert 0 <= last.correct <= last.scored <= last.total
    # The running figure ends where the run's own mean does (every row judged without error here).
    assert last.correct / last.scored == pytest.approx(summary.metrics["correctness/mean"])
