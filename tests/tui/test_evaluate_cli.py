"""`proctor evaluate`: summary and run id on stdout, exit 0; one-line errors, exit 2; MLflow's output kept off."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TEST_KEY
from evaluation_helpers import responder, write_benchmark

from tui.cli import main


def test_evaluate_prints_summary_and_run_id(tmp_path: Path, azure_env, tracking: str,  # noqa: ANN001
                                            capsys: pytest.CaptureFixture[str]) -> None:
    azure_env.behaviour.responder = responder
    bench = write_benchmark(tmp_path / "bench.csv")
    code = main(["evaluate", str(bench), "--model", "azure:/gpt-4.1-mini", "--judge", "azure:/gpt-4.1-nano",
                 "-o", str(tmp_path / "results.csv")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "accuracy (errors count as wrong)  100.0%" in out
    assert "run id: " in out and "run: gpt-4.1-mini" in out
    assert (tmp_path / "results.csv").exists()
    # MLflow's banner and INFO logs went to the log file, not the terminal.
    assert "Evaluation completed" not in out + err and "INFO mlflow" not in out + err
    log = (tmp_path / ".proctor" / "mlflow.log").read_text()
    assert "Evaluation completed" in log and TEST_KEY not in log
    run_id = out.split("run id: ")[1].split()[0]
    from mlflow.tracking import MlflowClient

    assert MlflowClient().get_run(run_id).data.metrics["accuracy"] == 1.0


@pytest.mark.parametrize(("args", "message"), [
    (["missing.csv"], "missing.csv: no such file"),
    (["bench.csv", "--judge", "gpt-4.1-nano"], "is not a model URI"),
    (["bench.csv", "--judge", "openai:/gpt-4.1-nano"], "needs OPENAI_API_KEY"),
    (["bench.csv", "--scorers", "bleu"], "unknown scorer 'bleu'"),
    (["bench.csv", "--judge-timeout", "0"], "positive number of seconds"),
    (["bench.csv", "--model", "nope"], "is not a model URI"),
])
def test_bad_input_or_settings_exit_2(tmp_path: Path, azure_env, args: list[str], message: str,  # noqa: ANN001
                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_benchmark(tmp_path / "bench.csv")
    code = main(["evaluate", *args])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("proctor: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert azure_env.log == []
