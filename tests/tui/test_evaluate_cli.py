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
    # (evaluate's banner only when evaluate judged: on SQLite Proctor's fast path did, and logs that instead)
    assert "INFO mlflow" in log and "judging 8 row(s) with" in log and TEST_KEY not in log
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


# ---------------------------------------------------------------- broken stores and dead models (issue 10)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _one_line_error(err: str) -> str:
    assert err.startswith("proctor: error: "), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(("server", "models"), [
    ("closed port", []),
    ("never answers", []),
    ("closed port", ["-m", "azure:/gpt-4.1-nano", "-m", "azure:/gpt-4.1-mini"]),  # several models: the same
])
def test_an_unreachable_tracking_server_fails_before_any_model_call(
        tmp_path: Path, azure_env, server: str, models: list[str], monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
        capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    silent = socket.socket()
    try:
        if server == "closed port":
            port = _closed_port()
        else:
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)  # connections are accepted by the kernel; nothing ever answers
            port = silent.getsockname()[1]
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://user:pa55word@127.0.0.1:{port}")
        bench = write_benchmark(tmp_path / "bench.csv")
        code = main(["evaluate", str(bench), "--judge", "azure:/gpt-4.1-nano", *models])
    finally:
        silent.close()
    out, err = capsys.readouterr()
    assert code == 2
    line = _one_line_error(err)
    assert f"MLFLOW_TRACKING_URI=http://****@127.0.0.1:{port}" in line and "pa55word" not in out + err
    assert azure_env.log == []  # checked before the model was asked anything
    assert not list(tmp_path.glob("*.answers.*.csv"))


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path, azure_env,  # noqa: ANN001
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    shop = tmp_path / "shop.db"
    con = sqlite3.connect(shop)
    con.executescript("CREATE TABLE orders(id INTEGER, total REAL); INSERT INTO orders VALUES (1, 9.5);")
    con.commit()
    con.close()
    before = shop.read_bytes()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{shop}")
    code = main(["evaluate", str(write_benchmark(tmp_path / "bench.csv")), "--judge", "none"])
    _, err = capsys.readouterr()
    assert code == 2 and "not an MLflow store" in _one_line_error(err)
    assert shop.read_bytes() == before
    assert azure_env.log == []


def test_a_deleted_experiment_is_said_before_any_model_call(tmp_path: Path, azure_env, tracking: str,  # noqa: ANN001
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    client.delete_experiment(client.create_experiment("retired"))
    code = main(["evaluate", str(write_benchmark(tmp_path / "bench.csv")), "--judge", "none", "-e", "retired"])
    _, err = capsys.readouterr()
    assert code == 2 and "experiment 'retired' was deleted" in _one_line_error(err)
    assert azure_env.log == []


def _runs(experiment: str) -> list:  # noqa: ANN202 - MLflow Run objects
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id])


def test_no_answer_back_exits_1_and_logs_no_finished_run(tmp_path: Path, azure_env, tracking: str,  # noqa: ANN001
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    azure_env.behaviour.fail_rate = 1.0
    azure_env.behaviour.fail_statuses = (500,)
    monkeypatch.setenv("PROCTOR_MAX_RETRIES", "1")
    code = main(["evaluate", str(write_benchmark(tmp_path / "bench.csv")), "--judge", "none", "-e", "dead-model",
                 "-q"])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "no answer came back from azure:/gpt-4.1-nano: all 8 row(s) failed" in err
    assert "run id" not in out
    assert not any(run.info.status == "FINISHED" for run in _runs("dead-model"))


def test_a_dead_model_endpoint_never_gives_a_finished_run(tmp_path: Path, tracking: str,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dead-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    monkeypatch.setenv("PROCTOR_MAX_RETRIES", "1")
    code = main(["evaluate", str(write_benchmark(tmp_path / "bench.csv")), "--model", "openai:/gpt-4.1-mini",
                 "--judge", "none", "-e", "dead-endpoint", "-q"])
    out, err = capsys.readouterr()
    # 2 when the engine stops a run whose first requests all fail to connect (a setting to fix), else 1 (no answer).
    assert code in (1, 2), err
    _one_line_error(err)
    assert "run id" not in out
    assert not any(run.info.status == "FINISHED" for run in _runs("dead-endpoint"))


def test_an_answers_file_without_a_single_answer_exits_1(tmp_path: Path, tracking: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    answers = tmp_path / "answers.csv"
    answers.write_text("question,answer,llm_answer,model,error\nQ1?,A,,openai:/m,connection refused\n"
                       "Q2?,B,,openai:/m,connection refused\n", encoding="utf-8")
    code = main(["evaluate", str(answers), "--judge", "none", "-e", "no-answers"])
    _, err = capsys.readouterr()
    assert code == 1 and "'connection refused'" in _one_line_error(err)
    assert _runs("no-answers") == []


def _can_mount() -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_mount(), reason="needs `unshare -m` (a private mount namespace) to mount a small or "
                                             "read-only tmpfs")
@pytest.mark.parametrize(("mount", "message"), [
    ("ro", "read-only"),  # root ignores file modes: a read-only mount is the real thing
    ("size=96k", "the disk is full"),  # MLflow's tables do not fit: its migration fails mid-way
])
def test_a_read_only_or_full_store_folder_is_one_line(tmp_path: Path, mount: str, message: str) -> None:
    import os
    import subprocess
    import sys

    store = tmp_path / "store"
    store.mkdir()
    answers = tmp_path / "answers.csv"
    answers.write_text("question,answer,llm_answer,model\nQ?,Paris,Paris,openai:/m\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OPENAI_", "AZURE_", "PROCTOR_"))}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{store}/mlflow.db", MLFLOW_DISABLE_TELEMETRY="true",
               MLFLOW_MODEL_CATALOG_URI="", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    script = (f"mount -t tmpfs -o {mount} tmpfs {store} && cd {tmp_path} && exec {sys.executable} -m tui.cli "
              f"evaluate {answers} --judge none -q")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stderr
    _one_line_error(done.stderr)
    assert message in done.stderr


@pytest.mark.skipif(not _can_mount(), reason="needs `unshare -m` (a private mount namespace) for a read-only folder")
@pytest.mark.parametrize("artifacts", ["in the read-only folder", "elsewhere"])
def test_evaluate_from_a_read_only_folder(tmp_path: Path, artifacts: str) -> None:
    """The answers file and the current folder are read-only (a shared course folder); the store is elsewhere.

    MLflow keeps a SQLite store's artifacts in ./mlruns of the folder it runs in: that is refused at once, one line.
    With the experiment's artifacts in a writable place, the run is logged and MLflow's log goes to the state folder.
    """
    import os
    import subprocess
    import sys

    work = tmp_path / "course"
    work.mkdir()
    answers = work / "answers.csv"
    answers.write_text("question,answer,llm_answer,model\nQ?,Paris,Paris,openai:/m\n", encoding="utf-8")
    before = answers.read_bytes()
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OPENAI_", "AZURE_", "PROCTOR_"))}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{store}/mlflow.db", MLFLOW_DISABLE_TELEMETRY="true",
               MLFLOW_MODEL_CATALOG_URI="", PROCTOR_STATE_DIR=str(tmp_path / "state"),
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    if artifacts == "elsewhere":
        setup = (f"import mlflow; mlflow.set_tracking_uri('sqlite:///{store}/mlflow.db'); "
                 f"mlflow.create_experiment('proctor', artifact_location='{(tmp_path / 'artifacts').as_uri()}')")
        subprocess.run([sys.executable, "-c", setup], env=env, check=True, capture_output=True, timeout=300)
    script = (f"mount --bind {work} {work} && mount -o remount,ro,bind {work} && cd {work} && "
              f"exec {sys.executable} -m tui.cli evaluate answers.csv --judge none -q")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=300)
    assert "Traceback" not in done.stderr and answers.read_bytes() == before
    if artifacts == "elsewhere":
        assert done.returncode == 0, done.stderr
        assert "run id: " in done.stdout
        assert (tmp_path / "state" / "mlflow.log").exists()  # MLflow's output went to the state folder instead
    else:
        assert done.returncode == 2, done.stderr
        assert f"cannot write in {work}, where MLflow keeps the runs' files" in _one_line_error(done.stderr)


@pytest.mark.skipif(not _can_mount(), reason="needs `unshare -m` (a private mount namespace) to mount a small tmpfs")
def test_a_store_whose_disk_fills_during_the_run_is_one_line(tmp_path: Path) -> None:
    """A real MLflow store on a tmpfs with a few pages left: the run's own writes fill the disk."""
    import os
    import subprocess
    import sys

    template = tmp_path / "template.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OPENAI_", "AZURE_", "PROCTOR_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", MLFLOW_MODEL_CATALOG_URI="", PROCTOR_STATE_DIR=str(tmp_path / "s"),
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    setup = (f"import mlflow; mlflow.set_tracking_uri('sqlite:///{template}'); "
             f"mlflow.create_experiment('proctor', artifact_location='{(tmp_path / 'artifacts').as_uri()}')")
    subprocess.run([sys.executable, "-c", setup], env=env, check=True, capture_output=True, timeout=300)
    answers = tmp_path / "answers.csv"
    answers.write_text("question,answer,llm_answer,model\n" + "".join(
        f"Question {i} {'x' * 300},{i},It is {i}. {'y' * 500},openai:/m\n" for i in range(40)), encoding="utf-8")
    full = tmp_path / "full"
    full.mkdir()
    size = (template.stat().st_size // 4096 + 8) * 4096  # room for the store and 8 pages more
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{full}/mlflow.db"
    script = (f"mount -t tmpfs -o size={size} tmpfs {full} && cp {template} {full}/mlflow.db && cd {tmp_path} && "
              f"exec {sys.executable} -m tui.cli evaluate {answers} --judge none -q")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode in (1, 2), done.stderr  # 2 when the check already finds no room, 1 once the run started
    assert "the disk is full" in _one_line_error(done.stderr)
