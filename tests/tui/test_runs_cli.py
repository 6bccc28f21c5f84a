"""`proctor runs`, `proctor compare` and `proctor mlflow-ui`: output, --json, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.mlflow_server import free_port
from tests.runs_support import MINI, NANO, Row, log_contract_run, store_at
from tui.cli import main

MANY = [(f"What is {i} + {i}?", str(2 * i)) for i in range(30)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("store")
    with store_at(folder) as uri:
        nano = log_contract_run(folder, "gpt-4.1-nano", NANO)
        mini = log_contract_run(folder, "gpt-4.1-mini", MINI)
        other = log_contract_run(folder, "gpt-4o", NANO, judge="azure:/gpt-4o", experiment="other")
        # 30 questions: "strong" is right on all, "weak" on 10 (20 discordant pairs, exact McNemar p = 2^-19).
        strong = log_contract_run(folder, "strong", [Row("correct", a) for _, a in MANY], experiment="gate",
                                  questions=MANY)
        weak = log_contract_run(folder, "weak", [Row("correct" if i < 10 else "incorrect", a)
                                                 for i, (_, a) in enumerate(MANY)], experiment="gate", questions=MANY)
    return {"uri": uri, "folder": str(folder), "nano": nano, "mini": mini, "other": other, "strong": strong,
            "weak": weak}


@pytest.fixture(autouse=True)
def _use_store(clean_env: Path, store: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_lists_an_aligned_table(capsys: pytest.CaptureFixture[str], store: dict[str, str]) -> None:
    code, out, err = run_cli(capsys, "runs")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["DATE", "RUN", "NAME", "MODEL", "JUDGE", "ROWS", "ACCURACY", "CORRECT", "EXACT",
                                "CONTAINS", "LAT_S", "J_ERR", "A_ERR", "COST", "STATUS"]
    assert len(lines) == 3
    assert store["mini"][:8] in lines[1] and "gpt-4.1-mini" in lines[1], "newest first"
    # Accuracy 3 of 5 with its 95% Wilson interval (0.2307, 0.8824), computed from `rows` for a run that did not log
    # it; the cost of 100 + 40 tokens on gpt-4.1-nano at $0.10 / $0.40 per 1M is $0.000026.
    assert re.search(r"openai:/gpt-4\.1-nano\s+openai:/gpt-4\.1-mini\s+5\s+0\.600 \[0\.23-0\.88\]\s+0\.750",
                     lines[2])
    assert lines[1].endswith("FINISHED")
    # Aligned: every column starts at the header's offset.
    assert lines[1].index(store["mini"][:8]) == lines[0].index("RUN")


def test_runs_json_and_experiment(capsys: pytest.CaptureFixture[str], store: dict[str, str]) -> None:
    code, out, _ = run_cli(capsys, "runs", "--experiment", "other", "--json")
    assert code == 0
    [run] = json.loads(out)
    assert run["run_id"] == store["other"]
    assert run["judge"] == "azure:/gpt-4o"
    assert run["rows"] == 5
    assert run["metrics"]["accuracy"] == pytest.approx(0.6)
    assert run["params"]["dataset_hash"]
    assert run["start_time"].startswith("20")
    # ci_low / ci_high beside each share; a share without counts to rebuild it from has them null.
    assert run["shares"]["accuracy"] == {"share": pytest.approx(0.6), "ci_low": pytest.approx(0.2307, abs=1e-4),
                                         "ci_high": pytest.approx(0.8824, abs=1e-4)}
    assert run["shares"]["correctness/mean"]["ci_low"] is None
    assert run["cost_usd"] is None and run["judge_cost_usd"] is None, "not logged: unknown, never 0"


def test_runs_unknown_experiment_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "runs", "--experiment", "nope")
    assert code == 2 and out == ""
    assert err.startswith("proctor: error: no experiment named 'nope'") and err.count("\n") == 1


def test_runs_in_an_empty_folder(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                 clean_env: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    code, out, _ = run_cli(capsys, "runs")
    assert code == 0
    assert "No runs in experiment 'proctor' yet" in out
    assert not (clean_env / "mlflow.db").exists()


def test_runs_run_opens_one_run(capsys: pytest.CaptureFixture[str], store: dict[str, str]) -> None:
    code, out, err = run_cli(capsys, "runs", store["nano"][:8])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"Run {store['nano'][:8]}  gpt-4.1-nano  openai:/gpt-4.1-nano  judge "
                               "openai:/gpt-4.1-mini  20")
    # The accuracy with its 95% Wilson interval (3 of 5), then one line per question in row order with its verdict.
    assert "  accuracy 0.600 [95% CI 0.231-0.882]" in lines
    assert "5 rows from results/results.csv:" in lines
    table = lines[lines.index("5 rows from results/results.csv:") + 1:]
    assert table[0].split() == ["ROW", "VERDICT", "QUESTION", "ANSWER", "REFERENCE"]
    assert [line.split()[1] for line in table[1:]] == ["correct", "correct", "correct", "incorrect", "-"]
    assert "What is 7 x 6?" in table[4] and "48" in table[4] and "42" in table[4]


def test_runs_run_json_carries_the_rows(capsys: pytest.CaptureFixture[str], store: dict[str, str]) -> None:
    code, out, _ = run_cli(capsys, "runs", "gpt-4.1-mini", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["run_id"] == store["mini"] and data["results_source"] == "artifact"
    assert [r["judge_verdict"] for r in data["results"]] == ["correct", "incorrect", "correct", "correct", "correct"]
    assert data["results"][1]["judge_rationale"] == "A spider has eight legs, not six."
    assert data["shares"]["accuracy"]["ci_low"] == pytest.approx(0.3755, abs=1e-4)


def test_runs_run_unknown_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "runs", "gpt-9")
    assert code == 2 and out == ""
    assert err.startswith("proctor: error: no run matches 'gpt-9'") and err.count("\n") == 1


def test_compare_shows_deltas_and_the_questions_that_differ(capsys: pytest.CaptureFixture[str],
                                                            store: dict[str, str]) -> None:
    code, out, err = run_cli(capsys, "compare", "gpt-4.1-nano", store["mini"][:7])
    assert code == 0, err
    assert "warning" not in out
    # Each share with its 95% interval; the paired p-value; no "better" (1 vs 2 discordant questions, p = 1).
    assert re.search(r"^accuracy\s+0\.600 \[0\.23-0\.88\]\s+0\.800 \[0\.38-0\.96\]\s+\+0\.200\s+1$", out, re.M)
    assert re.search(r"^judge_errors\s+1\s+0\s+-1$", out, re.M), "a count is never called better"
    assert "  accuracy: n 5, A only right 1, B only right 2, B - A +20.0 points" in out
    assert ("B is ahead by 20.0 points (95% CI " in out and "p = 1): not a detectable difference at n = 5" in out)
    assert "A and B took the same time on all 5 question(s)." in out
    a_part, b_part = out.split("A right, B wrong (1)")[1].split("B right, A wrong (1)")
    assert "How many legs has a spider?" in a_part
    assert "A spider has eight legs, not six." in a_part
    assert "What is 7 x 6?" in b_part
    assert "regression" not in out


def test_compare_json(capsys: pytest.CaptureFixture[str], store: dict[str, str]) -> None:
    code, out, _ = run_cli(capsys, "compare", store["nano"], "gpt-4.1-mini", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["a"]["run_id"] == store["nano"] and data["b"]["run_id"] == store["mini"]
    accuracy = next(m for m in data["metrics"] if m["name"] == "accuracy")
    assert accuracy["delta"] == pytest.approx(0.2) and accuracy["better"] == ""
    assert accuracy["a_ci"] == pytest.approx([0.2307, 0.8824], abs=1e-4)
    paired = data["paired"]
    assert {"n", "a_only", "b_only", "diff", "ci_low", "ci_high", "p_value", "mde"} <= set(paired)
    assert (paired["n"], paired["a_only"], paired["b_only"]) == (5, 1, 2)
    assert paired["diff"] == pytest.approx(0.2) and paired["p_value"] == pytest.approx(1.0)
    assert paired["ci_low"] < 0 < paired["ci_high"] and paired["mde"] > 0.2
    assert paired["sentence"].startswith("B is ahead by 20.0 points")
    latency = data["paired_latency"]
    assert {"n", "diff", "ci_low", "ci_high", "p_value", "mde"} <= set(latency)
    assert (latency["n"], latency["diff"], latency["p_value"]) == (5, 0.0, 1.0)
    assert set(data["paired_metrics"]) == {"accuracy", "correctness/mean", "exact_match/mean",
                                           "contains_reference/mean"}
    assert data["sentences"][0] == paired["sentence"]
    assert [d["question"] for d in data["a_right_b_wrong"]] == ["How many legs has a spider?"]
    assert data["b_right_a_wrong"][0]["rationale_b"]
    assert data["regressions"] == [] and data["warnings"] == []


def test_compare_warns_about_another_judge(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "compare", "gpt-4.1-nano", "gpt-4o")
    assert code == 0
    assert "warning: the runs were judged by different judges (openai:/gpt-4.1-mini vs azure:/gpt-4o)" in out


def test_fail_if_worse_exits_1_on_a_regression_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "compare", "gpt-4.1-mini", "gpt-4.1-nano", "--fail-if-worse", "accuracy:0.02")
    assert code == 1
    assert "regression: accuracy got worse by 0.2: 0.8 -> 0.6" in out
    code, out, _ = run_cli(capsys, "compare", "gpt-4.1-mini", "gpt-4.1-nano", "--fail-if-worse", "accuracy:0.3")
    assert code == 0
    code, _, _ = run_cli(capsys, "compare", "gpt-4.1-nano", "gpt-4.1-mini", "--fail-if-worse", "accuracy:0",
                         "--fail-if-worse", "latency_mean_s:0")
    assert code == 0, "B is better on accuracy and equal on latency"
    code, out, _ = run_cli(capsys, "compare", "gpt-4.1-nano", "gpt-4.1-mini", "--json",
                           "--fail-if-worse", "exact_match/mean:0.1")
    assert code == 1
    assert json.loads(out)["regressions"][0].startswith("exact_match/mean got worse by 0.2")


def test_significant_fails_only_on_a_detectable_regression(capsys: pytest.CaptureFixture[str],
                                                            store: dict[str, str]) -> None:
    # mini -> nano: accuracy 0.8 -> 0.6 is worse than the tolerance, but on 1 vs 2 discordant questions (p = 1).
    gate = ["--fail-if-worse", "accuracy:0.02", "--significant"]
    code, out, _ = run_cli(capsys, "compare", "gpt-4.1-mini", "gpt-4.1-nano", *gate)
    assert code == 0 and "regression" not in out
    # strong -> weak: 1.0 -> 0.333 on 30 questions, p = 2^-19: a regression either way.
    code, out, _ = run_cli(capsys, "compare", store["strong"], store["weak"], *gate)
    assert code == 1
    assert "regression: accuracy got worse by 0.6667: 1 -> 0.3333" in out and "p < 0.001, significant at 5%" in out
    assert "A is better, a detectable difference at n = 30." in out
    code, out, _ = run_cli(capsys, "compare", store["strong"], store["weak"], "--json", *gate)
    data = json.loads(out)
    assert code == 1 and data["paired"]["significant"] is True and data["paired"]["b_only"] == 0
    assert data["paired"]["p_value"] == pytest.approx(2 ** -19)
    assert next(m for m in data["metrics"] if m["name"] == "accuracy")["better"] == "a"
    # Within the tolerance: no regression, significant or not.
    code, _, _ = run_cli(capsys, "compare", store["strong"], store["weak"], "--fail-if-worse", "accuracy:0.7",
                         "--significant")
    assert code == 0
    # Improvements never fail.
    code, _, _ = run_cli(capsys, "compare", store["weak"], store["strong"], *gate)
    assert code == 0


@pytest.mark.parametrize("argv, message", [
    (["compare", "gpt-4.1-nano", "gpt-4.1-mini", "--significant"], "--significant qualifies --fail-if-worse"),
    (["compare", "gpt-4.1-nano", "gpt-4.1-mini", "--fail-if-worse", "latency_p95_s:0", "--significant"],
     "--significant needs a paired test on 'latency_p95_s'"),
    (["compare", "gpt-4.1-nano", "gpt-9"], "no run matches 'gpt-9'"),
    (["compare", "gpt-4.1-nano", "gpt-4.1-mini", "--fail-if-worse", "accuracy"], "wants METRIC:TOLERANCE"),
    (["compare", "gpt-4.1-nano", "gpt-4.1-mini", "--fail-if-worse", "accuracy:x"], "must be a number"),
    (["compare", "gpt-4.1-nano", "gpt-4.1-mini", "--fail-if-worse", "bleu:0.1"], "metric 'bleu' is not logged"),
])
def test_compare_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                 message: str) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("proctor: error: ") and message in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_mlflow_ui_with_a_tracking_server_just_prints_its_url(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.com")
    code, out, _ = run_cli(capsys, "mlflow-ui")
    assert code == 0 and "https://mlflow.example.com" in out


def test_mlflow_ui_refuses_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, _, err = run_cli(capsys, "mlflow-ui", "--port", str(busy.getsockname()[1]))
    assert code == 2 and "is already in use" in err


@pytest.mark.slow
def test_mlflow_ui_command_serves_until_ctrl_c(store: dict[str, str], clean_env: Path) -> None:
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"]}
    # preexec_fn: Ctrl-C must reach the command even when the suite itself was started with SIGINT ignored (in the
    # background by a shell without job control), which children inherit.
    process = subprocess.Popen([sys.executable, "-m", "tui.cli", "mlflow-ui", "--port", str(port)], cwd=clean_env,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = process.stdout.readline()
        assert first.startswith(f"Starting the MLflow UI on http://127.0.0.1:{port}")
        ready = process.stdout.readline()
        assert ready.startswith(f"MLflow UI ready at http://127.0.0.1:{port}"), process.stderr.read()
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
        assert server_processes(port), "mlflow server and its uvicorn worker run"
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=120)  # the server's grace period, stretched by a loaded machine
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "MLflow UI stopped." in rest
    assert "Traceback" not in err
    time.sleep(0.2)
    assert server_processes(port) == []


def server_processes(port: int) -> list[str]:
    # "[-]-port" keeps pgrep from reading the pattern as an option.
    return subprocess.run(["pgrep", "-f", f"[-]-port {port}"], capture_output=True, text=True).stdout.split()


def test_runs_with_an_unreachable_server_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    code, out, err = run_cli(capsys, "runs")
    assert code == 2 and out == ""
    assert err.startswith(f"proctor: error: MLFLOW_TRACKING_URI=http://127.0.0.1:{port}: ") and "refused" in err
    assert len(err.strip().splitlines()) == 1


def test_runs_on_a_corrupt_store_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], clean_env: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    broken = clean_env / "mlflow.db"
    broken.write_bytes(b"this was a store once\n" * 100)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{broken}")
    code, _, err = run_cli(capsys, "runs")
    assert code == 2 and "is not a SQLite database" in err and len(err.strip().splitlines()) == 1
    assert broken.read_bytes() == b"this was a store once\n" * 100


def test_compare_against_a_server_that_never_answers_is_one_line(capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel accepts connections; nothing ever answers
        port = silent.getsockname()[1]
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        code, out, err = run_cli(capsys, "compare", "gpt-4.1-nano", "gpt-4.1-mini")
    assert code == 2 and out == ""
    assert "no answer within 3 s" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
