"""Wall time of `evaluate_file` on a benchmark: the model answers (core's engine), then the judge (MLflow).

Both model and judge are the fake server, in a child process, at a fixed latency; the store is a fresh sqlite file
in a temporary folder. Prints the wall time and the time of each phase (reading, answering, MLflow import and
set-up, evaluate itself, logging). Run twice in one process (`--repeat 2`) to see the cost of a second evaluation
once mlflow is imported and the store migrated.

    python benchmarks/bench_evaluate.py [--n 20] [--latency 0.2] [--repeat 2]

`--side-by-side` (the issue's case): an answers CSV of --n rows (default 100) judged at judge latencies 0 and 0.2 s,
as the whole `proctor evaluate` command (PROCTOR_CONCURRENCY=--workers) beside a plain `mlflow.genai.evaluate` on
the same rows with the same scorers and MLFLOW_GENAI_EVAL_MAX_WORKERS=--workers, each in its own process on a store
created beforehand and on its own fresh copy of the answers (Proctor writes its verdicts into the file it judged, and
would otherwise reuse them). At judge latency 0.2 s Proctor also runs at each of --concurrencies (default 1,8,32).
Prints the wall time of each, the medians and the machine's load.

    python benchmarks/bench_evaluate.py --side-by-side [--n 100] [--workers 8] [--repeat 1] [--concurrencies 1,8,32]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # after ROOT: tests/core must not shadow core


def serve(latency: float) -> None:
    """Child-process mode: the fake server answering as model and as judge."""
    from evaluation_helpers import responder
    from fake_llm_server import Behaviour, FakeLLMServer

    server = FakeLLMServer(Behaviour(latency=latency, responder=responder), api_key=None).start()
    print(f"READY {server.root}", flush=True)
    threading.Event().wait()


STALL_S = 300  # a run this long is a stall, not a figure

PLAIN = """
import os, sys, time
import pandas as pd
import mlflow
from mlflow.genai.scorers import Correctness, scorer
sys.path.insert(0, {root!r})
from core.scorers import contains_reference_score, exact_match_score

@scorer
def exact_match(outputs, expectations):
    return bool(exact_match_score(str(outputs), expectations["expected_response"]))

@scorer
def contains_reference(outputs, expectations):
    return bool(contains_reference_score(str(outputs), expectations["expected_response"]))

frame = pd.read_csv({answers!r}, dtype=str, encoding="utf-8-sig")
data = [{{"inputs": {{"question": q}}, "outputs": a, "expectations": {{"expected_response": r}}}}
        for q, a, r in zip(frame["question"], frame["llm_answer"], frame["answer"])]
mlflow.set_experiment("plain")
started = time.perf_counter()
result = mlflow.genai.evaluate(data=data, scorers=[Correctness(model="azure:/gpt-4.1-nano"), exact_match,
                                                   contains_reference])
print(f"EVALUATE {{time.perf_counter() - started:.2f}}", result.metrics.get("correctness/mean"))
"""


def _judged_rows(answers: Path) -> int:
    """Rows of the answers file with a verdict from this run's judge (its `judge_verdict` column)."""
    import csv

    with open(answers, encoding="utf-8-sig", newline="") as handle:
        return sum(1 for row in csv.DictReader(handle) if row.get("judge_verdict") in ("correct", "incorrect"))


def side_by_side(n: int, workers: int, repeat: int, concurrencies: list[int] | None = None,
                 concurrency_latencies: tuple[float, ...] = (0.2,)) -> None:
    """The whole `proctor evaluate` command beside a plain mlflow.genai.evaluate, same rows, same workers."""
    import shutil
    import statistics

    import pandas as pd

    from core.csvio import write_csv_atomic
    from core.store_setup import ensure_store

    concurrencies = [c for c in (concurrencies or []) if c != workers]

    def load() -> str:
        return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())

    with tempfile.TemporaryDirectory(prefix="bench-evaluate-side-") as tmp:
        folder = Path(tmp)
        answers = folder / "answers.csv"
        write_csv_atomic(pd.DataFrame([{
            "question": f"Question {i}: what is {i} times 7?", "answer": str(i * 7),
            "llm_answer": str(i * 7 if i % 3 else i * 6), "model": "openai:/bench-model", "latency_s": "0.100",
            "prompt_tokens": "10", "completion_tokens": "3", "error": ""} for i in range(1, n + 1)]), answers)
        template = folder / "template.db"
        ensure_store(f"sqlite:///{template}")  # "store already created": every run starts from a copy of it
        print(f"{n} answered rows, {workers} workers, store created beforehand")
        for latency in (0.0, 0.2):
            proc = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(latency)],
                                    stdout=subprocess.PIPE, text=True)
            try:
                root = (proc.stdout.readline().strip() if proc.stdout else "").split(" ", 1)[1]
                env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "OPENAI_", "AZURE_"))}
                env.update({"AZURE_OPENAI_ENDPOINT": root, "AZURE_OPENAI_API_KEY": "bench-key-not-secret",
                            "AZURE_API_KEY": "bench-key-not-secret", "AZURE_API_BASE": root,
                            "AZURE_API_VERSION": "2024-02-15-preview", "PROCTOR_CONCURRENCY": str(workers),
                            "MLFLOW_GENAI_EVAL_MAX_WORKERS": str(workers), "MLFLOW_DISABLE_TELEMETRY": "true",
                            "MLFLOW_MODEL_CATALOG_URI": "", "MLFLOW_GENAI_EVAL_MAX_RETRIES": "0",
                            "PYTHONPATH": str(ROOT)})
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                times: dict[str, list[float]] = {f"proctor evaluate, concurrency {workers} (whole command)": [],
                                                 "plain mlflow.genai.evaluate (whole process)": [],
                                                 "  of which the evaluate call": []}
                runs = [(kind, workers, attempt) for attempt in range(repeat) for kind in ("proctor", "plain")]
                if latency in concurrency_latencies:
                    runs += [("proctor", c, attempt) for attempt in range(repeat) for c in concurrencies]
                for kind, conc, attempt in runs:
                    run_dir = folder / f"{kind}-{latency}-{conc}-{attempt}"
                    run_dir.mkdir()
                    shutil.copyfile(template, run_dir / "mlflow.db")
                    # A fresh copy of the answers per run: Proctor writes its verdicts into the file it judged
                    # and a later run on the same file would reuse them instead of asking the judge.
                    run_answers = run_dir / answers.name
                    shutil.copyfile(answers, run_answers)
                    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{run_dir / 'mlflow.db'}"
                    if kind == "proctor":
                        command = [sys.executable, "-m", "tui.cli", "evaluate", str(run_answers), "--judge",
                                   "azure:/gpt-4.1-nano", "-q"]
                    else:
                        command = [sys.executable, "-c", PLAIN.format(root=str(ROOT), answers=str(answers))]
                    run_env = dict(env, PROCTOR_CONCURRENCY=str(conc))
                    if kind == "proctor":
                        run_env.pop("MLFLOW_GENAI_EVAL_MAX_WORKERS")  # Proctor's own choice from its concurrency
                    started = time.perf_counter()
                    try:
                        result = subprocess.run(command, cwd=run_dir, env=run_env, capture_output=True, text=True,
                                                timeout=STALL_S)
                    except subprocess.TimeoutExpired:
                        raise SystemExit(f"{kind} at concurrency {conc} STALLED: no end after {STALL_S} s") from None
                    wall = time.perf_counter() - started
                    if result.returncode != 0:
                        raise SystemExit(f"{kind} failed: {result.stderr.strip()[-800:]}")
                    if kind == "proctor":
                        judged = _judged_rows(run_answers)
                        if judged != n:
                            raise SystemExit(f"proctor judged {judged} of {n} rows: not a fresh run")
                        times.setdefault(f"proctor evaluate, concurrency {conc} (whole command)", []).append(wall)
                    else:
                        times["plain mlflow.genai.evaluate (whole process)"].append(wall)
                        inner = [line for line in result.stdout.splitlines() if line.startswith("EVALUATE")]
                        times["  of which the evaluate call"].append(float(inner[-1].split()[1]))
                    print(f"  judge latency {latency:g} s, {kind} (concurrency {conc}): {wall:.2f} s ({load()})",
                          flush=True)
                for label, values in times.items():
                    print(f"judge latency {latency:g} s  {label:<50} median {statistics.median(values):6.2f} s  "
                          f"({len(values)} run(s): {' '.join(f'{v:.2f}' for v in values)}; {load()})", flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--side-by-side", action="store_true")
    parser.add_argument("--concurrencies", default="1,8,32",
                        help="with --side-by-side: Proctor alone at these concurrencies too (judge latency 0.2 s)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency)
        return
    if args.side_by_side:
        side_by_side(args.n or 100, args.workers, args.repeat or 1,
                     [int(c) for c in args.concurrencies.split(",") if c.strip()])
        return
    args.n = args.n or 20
    args.repeat = args.repeat or 2

    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(args.latency)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if not line.startswith("READY "):
            raise SystemExit(f"fake server did not start: {line!r}")
        root = line.split(" ", 1)[1]
        with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
            os.chdir(tmp)
            os.environ.update({
                "AZURE_OPENAI_ENDPOINT": root, "AZURE_OPENAI_API_KEY": "bench-key-not-secret",
                "AZURE_OPENAI_DEPLOYMENT": "gpt-4.1-nano", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
            })
            from evaluation_helpers import write_benchmark

            from core.evaluation import evaluate_file

            rows = [(f"Question {i}: what is {i} times 7?", str(i * 7)) for i in range(1, args.n + 1)]
            for attempt in range(1, args.repeat + 1):
                bench = write_benchmark(Path(tmp) / f"bench{attempt}.csv", rows)
                started = time.perf_counter()
                summary = evaluate_file(bench, model="azure:/gpt-4.1-mini", judge="azure:/gpt-4.1-nano")
                wall = time.perf_counter() - started
                phases = "  ".join(f"{k}={v:.2f}" for k, v in summary.timings.items())
                print(f"run {attempt}: {args.n} rows at {args.latency:g} s: wall {wall:.2f} s  "
                      f"accuracy {summary.metrics['accuracy']:.2f}  judge_errors {summary.metrics['judge_errors']:g}")
                print(f"  phases (s): {phases}")
    finally:
        proc.terminate()
        proc.wait(timeout=5)


if __name__ == "__main__":
    main()
