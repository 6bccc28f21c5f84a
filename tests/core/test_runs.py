"""core.runs against a real MLflow sqlite store holding runs logged per the evaluate contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError
from core.runs import (
    FailIfWorse,
    check_fail_if_worse,
    compare_runs,
    list_runs,
    load_run,
    lower_is_better,
    parse_fail_if_worse,
    resolve_run,
)
from tests.runs_support import MINI, NANO, QUESTIONS, Row, log_contract_run, store_at


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One store for the module (the first sqlite migration takes about 9 s)."""
    folder = tmp_path_factory.mktemp("store")
    with store_at(folder) as uri:
        ids: dict[str, object] = {"uri": uri, "folder": folder}
        ids["nano"] = log_contract_run(folder, "gpt-4.1-nano", NANO)
        ids["mini"] = log_contract_run(folder, "gpt-4.1-mini", MINI)
        # Another experiment: the same name twice (the latest must win), another judge, another dataset, no table.
        ids["old1"] = log_contract_run(folder, "old-model", MINI, judge="azure:/gpt-4o", experiment="other",
                                       dataset_hash="f" * 64, with_results=False)
        ids["old2"] = log_contract_run(folder, "old-model", NANO, judge="azure:/gpt-4o", experiment="other",
                                       dataset_hash="f" * 64, with_results=False)
        # Pigeonhole: by 17 run ids two share a first hex digit, so an ambiguous prefix surely exists.
        extra: list[str] = []
        while len({i[0] for i in [*extra, *(ids[k] for k in ("nano", "mini", "old1", "old2"))]}) == len(extra) + 4:
            extra.append(log_contract_run(folder, f"extra-{len(extra)}", NANO, experiment="extra"))
        ids["extra"] = extra
        ids["traced"] = _log_traced_run()
    return ids


def _log_traced_run() -> str:
    """A run without results.csv whose rows live only as traces with judge assessments (what genai.evaluate logs)."""
    import mlflow
    from mlflow.entities import AssessmentSource, AssessmentSourceType
    from mlflow.tracking import MlflowClient

    # An explicit experiment id, not set_experiment: the active experiment is process-wide state.
    experiment_id = MlflowClient().create_experiment("traced")
    judge = AssessmentSource(source_type=AssessmentSourceType.LLM_JUDGE, source_id="openai:/gpt-4.1-mini")
    with mlflow.start_run(experiment_id=experiment_id, run_name="traced-model") as run:
        for (question, reference), verdict in zip(QUESTIONS[:2], ("yes", "no"), strict=True):
            with mlflow.start_span(name="predict") as span:
                span.set_inputs({"question": question})
                span.set_outputs({"response": f"answer to {question}"})
                trace_id = span.trace_id
            mlflow.flush_trace_async_logging()  # traces are exported in the background; assess it once stored
            mlflow.log_expectation(trace_id=trace_id, name="expected_response", value=reference)
            mlflow.log_feedback(trace_id=trace_id, name="correctness", value=verdict, source=judge,
                                rationale=f"judged {verdict}")
    return run.info.run_id


@pytest.fixture(autouse=True)
def _use_store(clean_env: Path, store: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(store["uri"]))


def test_list_runs_newest_first_with_the_contract_fields(store: dict[str, object]) -> None:
    runs = list_runs()
    assert [r.run_id for r in runs] == [store["mini"], store["nano"]]
    mini = runs[0]
    assert mini.name == "gpt-4.1-mini"
    assert mini.model == "openai:/gpt-4.1-mini"
    assert mini.judge == "openai:/gpt-4.1-mini"
    assert mini.rows == 5
    assert mini.status == "FINISHED"
    assert mini.main_metrics["accuracy"] == pytest.approx(0.8)
    assert mini.params["dataset_name"] == "course.csv"
    assert mini.start_time is not None
    assert mini.to_dict()["main_metrics"]["accuracy"] == pytest.approx(0.8)


def test_list_runs_of_another_experiment_and_an_unknown_one(store: dict[str, object],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert [r.run_id for r in list_runs("other")] == [store["old2"], store["old1"]]
    monkeypatch.setenv("PROCTOR_EXPERIMENT", "other")
    assert len(list_runs()) == 2
    with pytest.raises(InputError, match="no experiment named 'nope'.*proctor"):
        list_runs("nope")


def test_an_empty_folder_lists_nothing_without_creating_a_store(clean_env: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert list_runs() == []
    with pytest.raises(InputError, match="nothing has been logged yet"):
        resolve_run("gpt-4.1-nano")
    assert not (clean_env / "mlflow.db").exists()


def test_resolve_by_full_id_prefix_and_name(store: dict[str, object]) -> None:
    nano = str(store["nano"])
    assert resolve_run(nano).run_id == nano
    assert resolve_run(nano.upper()).run_id == nano
    assert resolve_run(nano[:10]).run_id == nano
    assert resolve_run("gpt-4.1-nano").run_id == nano
    assert resolve_run("old-model").run_id == store["old2"], "a run name resolves to the latest run of that name"
    assert resolve_run("old-model").experiment == "other"


def test_ambiguous_prefix_and_unknown_run_are_one_line_input_errors(store: dict[str, object]) -> None:
    ids = [str(store[k]) for k in ("nano", "mini", "old1", "old2")] + list(store["extra"])  # type: ignore[arg-type]
    first = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    with pytest.raises(InputError, match=f"run '{first}' is ambiguous") as caught:
        resolve_run(first)
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match="no run matches 'gpt-5'") as caught:
        resolve_run("gpt-5")
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match="no run given"):
        resolve_run("  ")


def test_load_run_reads_the_results_artifact(store: dict[str, object]) -> None:
    detail = load_run(str(store["nano"])[:8])
    assert detail.results_source == "artifact"
    assert list(detail.results["question"]) == [q for q, _ in QUESTIONS]
    assert list(detail.results["judge_verdict"]) == ["correct", "correct", "correct", "incorrect", ""]
    assert detail.results.loc[4, "judge_error"] == "judge timed out"
    assert detail.info.metrics["judge_errors"] == 1


def test_load_run_without_results_falls_back_to_trace_assessments(store: dict[str, object]) -> None:
    detail = load_run(str(store["traced"]))
    assert detail.results_source == "traces"
    rows = detail.results.to_dict(orient="records")
    assert [r["question"] for r in rows] == [QUESTIONS[0][0], QUESTIONS[1][0]]
    assert [r["judge_verdict"] for r in rows] == ["correct", "incorrect"]
    assert [r["reference"] for r in rows] == ["Paris", "8"]
    assert rows[1]["judge_rationale"] == "judged no"
    assert rows[0]["llm_answer"] == f"answer to {QUESTIONS[0][0]}"


def test_load_run_with_neither_results_nor_traces_is_empty(store: dict[str, object]) -> None:
    detail = load_run(str(store["old1"]))
    assert detail.results_source == ""
    assert detail.results.empty


def test_compare_two_models_one_judge(store: dict[str, object]) -> None:
    comparison = compare_runs("gpt-4.1-nano", "gpt-4.1-mini")
    assert comparison.warnings == []
    assert comparison.basis == "judge_verdict"
    assert comparison.matched_rows == 5
    accuracy = comparison.metric("accuracy")
    # +0.2 on 5 questions rests on 1 vs 2 discordant questions (exact McNemar p = 1): no run is called better.
    assert (accuracy.a, accuracy.b, accuracy.better) == (pytest.approx(0.6), pytest.approx(0.8), "")
    assert accuracy.delta == pytest.approx(0.2) and accuracy.p_value == pytest.approx(1.0)
    assert accuracy.a_ci == pytest.approx((0.2307, 0.8824), abs=1e-4)  # Wilson 3/5, rebuilt from `rows`
    errors = comparison.metric("judge_errors")
    assert errors.lower_is_better and errors.better == "" and errors.p_value is None  # a count: never "better"
    paired = comparison.paired
    assert (paired.n, paired.a_only, paired.b_only, paired.both, paired.neither) == (5, 1, 2, 2, 0)
    assert paired.diff == pytest.approx(0.2) and not paired.significant
    # exact match per row: A matches Q1 Q2 Q3 Q5, B matches Q1 Q4 Q5.
    exact = comparison.paired_metrics["exact_match/mean"]
    assert (exact.n, exact.a_only, exact.b_only) == (5, 2, 1)
    # correctness/mean leaves out the row A's judge failed on (Q5), as its mean does.
    assert comparison.paired_metrics["correctness/mean"].n == 4
    assert comparison.paired_latency.n == 5 and comparison.paired_latency.diff == 0.0
    assert comparison.sentences[0].startswith("B is ahead by 20.0 points (95% CI ")
    assert [m.name for m in comparison.metrics][:2] == ["accuracy", "correctness/mean"]
    # A right, B wrong: the spider; B right, A wrong: 7 x 6 (Q5 has no verdict in A, so it is not counted).
    [a_only] = comparison.a_right_b_wrong
    assert a_only.question == "How many legs has a spider?"
    assert (a_only.verdict_a, a_only.verdict_b, a_only.answer_b) == ("correct", "incorrect", "6")
    assert a_only.rationale_b == "A spider has eight legs, not six."
    [b_only] = comparison.b_right_a_wrong
    assert b_only.question == "What is 7 x 6?" and b_only.row_a == "4"
    # And the reverse comparison mirrors it.
    reverse = compare_runs("gpt-4.1-mini", "gpt-4.1-nano")
    assert [d.question for d in reverse.b_right_a_wrong] == ["How many legs has a spider?"]
    assert reverse.metric("accuracy").delta == pytest.approx(-0.2)


def test_compare_warns_about_another_judge_and_another_dataset(store: dict[str, object]) -> None:
    comparison = compare_runs("gpt-4.1-nano", "old-model")
    text = " | ".join(comparison.warnings)
    assert "different judges (openai:/gpt-4.1-mini vs azure:/gpt-4o)" in text
    assert "different datasets" in text
    assert compare_runs("gpt-4.1-nano", "gpt-4.1-nano").warnings == ["both references name the same run"]


@pytest.mark.parametrize("text, expected", [
    ("accuracy:0.02", FailIfWorse("accuracy", 0.02)),
    ("correctness/mean:0", FailIfWorse("correctness/mean", 0.0)),
    (" latency_mean_s : 0.5 ", FailIfWorse("latency_mean_s", 0.5)),
])
def test_parse_fail_if_worse(text: str, expected: FailIfWorse) -> None:
    assert parse_fail_if_worse(text) == expected


@pytest.mark.parametrize("text, message", [
    ("accuracy", "wants METRIC:TOLERANCE"), (":0.1", "wants METRIC:TOLERANCE"), ("accuracy:", "wants"),
    ("accuracy:abc", "must be a number, not 'abc'"), ("accuracy:-0.1", "zero or more"), ("accuracy:nan", "zero"),
])
def test_parse_fail_if_worse_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_fail_if_worse(text)


def test_metric_directions() -> None:
    assert not lower_is_better("accuracy")
    assert not lower_is_better("correctness/mean")
    assert not lower_is_better("judge_human_kappa")
    assert lower_is_better("latency_p95_s")
    assert lower_is_better("judge_errors")
    assert lower_is_better("completion_tokens")


def test_check_fail_if_worse(store: dict[str, object]) -> None:
    better = compare_runs("gpt-4.1-nano", "gpt-4.1-mini")  # accuracy 0.6 -> 0.8
    worse = compare_runs("gpt-4.1-mini", "gpt-4.1-nano")  # accuracy 0.8 -> 0.6, exact match 0.6 -> 0.8
    assert check_fail_if_worse(better, [FailIfWorse("accuracy", 0.0)]) == []
    [failure] = check_fail_if_worse(worse, [FailIfWorse("accuracy", 0.02)])
    assert failure.startswith("accuracy got worse by 0.2: 0.8 -> 0.6")
    assert check_fail_if_worse(worse, [FailIfWorse("accuracy", 0.25)]) == [], "within the tolerance"
    # judge_errors: 0 -> 1 in `worse`; lower is better, so it is a regression beyond a tolerance of 0.5 ...
    assert check_fail_if_worse(worse, [FailIfWorse("judge_errors", 0.5)])
    # ... and 1 -> 0 in `better` is an improvement.
    assert check_fail_if_worse(better, [FailIfWorse("judge_errors", 0)]) == []
    with pytest.raises(InputError, match="metric 'bleu' is not logged in run A and B"):
        check_fail_if_worse(better, [FailIfWorse("bleu", 0.1)])


def test_check_fail_if_worse_significant(store: dict[str, object]) -> None:
    worse = compare_runs("gpt-4.1-mini", "gpt-4.1-nano")  # accuracy 0.8 -> 0.6 on 2 vs 1 discordant questions
    assert check_fail_if_worse(worse, [FailIfWorse("accuracy", 0.02)])
    assert check_fail_if_worse(worse, [FailIfWorse("accuracy", 0.02)], significant=True) == []
    assert check_fail_if_worse(worse, [FailIfWorse("latency_mean_s", 0)], significant=True) == []
    with pytest.raises(InputError, match="--significant needs a paired test on 'judge_errors'"):
        check_fail_if_worse(worse, [FailIfWorse("judge_errors", 0)], significant=True)


def test_run_info_shares_and_costs(store: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    [mini, _] = list_runs()
    assert mini.interval("accuracy") == pytest.approx((0.3755, 0.9638), abs=1e-4)  # Wilson 4/5
    assert mini.interval("correctness/mean") is None  # not logged, and its n is not known
    assert mini.cost_usd is None
    data = mini.to_dict()
    assert data["shares"]["accuracy"]["ci_high"] == pytest.approx(0.9638, abs=1e-4)
    assert data["cost_usd"] is None


def test_compare_matches_rows_by_question_text_and_reports_the_rest(store: dict[str, object]) -> None:
    # Another order, one question replaced: rows are matched by text, not position.
    questions = [QUESTIONS[3], QUESTIONS[1], ("What is the boiling point of water?", "100 C")]
    rows = [Row("correct", "42"), Row("incorrect", "six"), Row("correct", "100 C")]
    run_id = log_contract_run(Path(str(store["folder"])), "gpt-4.1-shuffled", rows, experiment="extra",
                              questions=questions)
    comparison = compare_runs(str(store["nano"]), run_id)
    assert comparison.matched_rows == 2
    assert (comparison.unmatched_a, comparison.unmatched_b) == (3, 1)
    assert [(d.question, d.row_a, d.row_b) for d in comparison.a_right_b_wrong] == [
        ("How many legs has a spider?", "2", "2")]
    assert [(d.question, d.row_a, d.row_b) for d in comparison.b_right_a_wrong] == [("What is 7 x 6?", "4", "1")]
    assert any("3 question(s) only in A and 1 only in B" in w for w in comparison.warnings)
