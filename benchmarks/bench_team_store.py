"""A team's store: `proctor evaluate`, `proctor runs` and a run's detail against an `mlflow server` over HTTP.

The same answers CSV (--n rows, default 100) is judged by the fake server (benchmarks/bench_evaluate.py's judge,
in a child process) at judge latencies 0 and 0.2 s with PROCTOR_CONCURRENCY=--workers (8), as the whole
`proctor evaluate` command, against each store:

- `local`: the default, a plain sqlite file in the folder (`MLFLOW_TRACKING_URI=sqlite:///.../mlflow.db`), for
  comparison;
- `server-sqlite`: `mlflow server --backend-store-uri sqlite:///...` on 127.0.0.1, artifacts served by the server
  (`--artifacts-destination`, so the client uploads them over HTTP as a remote team member's would);
- `server-postgres`: the same server backed by PostgreSQL: a throwaway cluster (`initdb`, `pg_ctl`) in a temporary
  folder on 127.0.0.1 and a free port, started and stopped here (run as the `postgres` user when this runs as
  root, since PostgreSQL refuses root). Needs Debian's postgresql package and a driver in this venv
  (`pip install psycopg2-binary`: for this benchmark only, not a Proctor dependency). Skipped, saying why, when
  either is missing.

Everything started here binds 127.0.0.1 and is stopped at the end (the server's whole process group, the cluster).
Each store keeps the runs logged to it, so `proctor runs` and the detail then read a store of about 2 x --repeat
runs of --n traces each. The judge writes its verdicts into the answers file it judged, so each command judges its
own fresh copy (no verdict is reused).

Printed per store, medians of --repeat (each figure with the load average when it was taken):
- the whole `proctor evaluate` command (process start to exit);
- the store part per row: evaluate's MLflow phase (mlflow.genai.evaluate: a trace, its spans and assessments per
  row) at judge latency 0, divided by the rows. The judge answers at once there, so this is MLflow's own per-row
  work: the store writes and the CPU around them. Phase times come from `EvaluationSummary.timings` (the command is
  run through a wrapper that prints them; nothing else changes);
- with --pair: two `proctor evaluate` commands started at once on the same store (two team members), the wall
  time until both are done;
- `proctor runs` (whole command) and a run's detail (`core.runs.load_run` in a new process: params, metrics and the
  results table, as the Runs pane opens it).

    python benchmarks/bench_team_store.py [--n 100] [--workers 8] [--repeat 3] [--server-workers 2]
                                          [--stores local,server-sqlite,server-postgres] [--pair]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_BIN = Path("/usr/lib/postgresql/15/bin")

# The command as a user runs it, with `evaluate_file` wrapped to print its phase timings on stderr at the end.
WRAPPER = """
import json, sys
import core.evaluation as evaluation
real = evaluation.evaluate_file
def timed(*args, **kwargs):
    summary = real(*args, **kwargs)
    print("TIMINGS " + json.dumps(summary.timings), file=sys.stderr)
    return summary
evaluation.evaluate_file = timed
from tui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s")


@contextmanager
def fake_judge(latency: float) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "bench_evaluate.py"), "--serve",
                             "--latency", str(latency)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"fake judge did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def mlflow_server(backend: str, folder: Path, workers: int) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 over `backend`, artifacts served from folder/artifacts; stopped with its group."""
    port = free_port()
    log = open(folder / "mlflow-server.log", "ab")  # noqa: SIM115 - closed below
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", backend, "--serve-artifacts",
               "--artifacts-destination", str(folder / "artifacts"), "--workers", str(workers)]
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder,
                            start_new_session=True)
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/health", 600, proc)
        except RuntimeError as error:
            log.flush()
            tail = (folder / "mlflow-server.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{error}: {' | '.join(tail)[-600:]}") from None
        print(f"  mlflow server ({workers} worker(s)) ready after {time.monotonic() - started:.1f} s ({load()})",
              flush=True)
        yield f"http://127.0.0.1:{port}"
    finally:
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=grace)
                # uvicorn workers and the job runner are in the same group: wait until none is left.
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline:
                    os.killpg(proc.pid, 0)
                    time.sleep(0.2)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        log.close()


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def postgres_missing() -> str:
    """Why the PostgreSQL store cannot be measured here, or "" when it can."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL server binaries in {PG_BIN} (Debian: apt-get install -y postgresql)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "no PostgreSQL driver in this venv (pip install psycopg2-binary, for this benchmark only)"
    return ""


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 and a free port; yields the SQLAlchemy URI of database mlflow."""
    folder = Path(tempfile.mkdtemp(prefix="proctor-bench-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    run = {"check": True, "capture_output": True, "text": True}
    started = time.monotonic()
    try:
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                     "-E", "UTF8", "--no-sync"]), **run)
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "pg.log"), "-w",
                                     "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}", "start"]),
                       **run)
        try:
            subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                            "mlflow"], **run)
            print(f"  postgres cluster up on 127.0.0.1:{port} after {time.monotonic() - started:.1f} s", flush=True)
            # +psycopg2: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, a driver this venv may not have.
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
        finally:
            subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                           capture_output=True)
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"postgres: {' '.join(error.cmd[-3:])} failed: {(error.stderr or '').strip()[-400:]}"
                           ) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def evaluate_once(answers: Path, folder: Path, env: dict[str, str], tag: str) -> subprocess.Popen:
    """Start one `proctor evaluate` on a fresh copy of the answers CSV, in a folder of its own."""
    run_dir = folder / tag
    run_dir.mkdir(parents=True)
    copy = run_dir / answers.name
    shutil.copyfile(answers, copy)
    return subprocess.Popen([sys.executable, "-c", WRAPPER, "evaluate", str(copy), "--judge", "azure:/gpt-4.1-nano",
                             "-q"], cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, tag: str) -> dict[str, float]:
    try:
        out, err = proc.communicate(timeout=1200)
    except BaseException:
        proc.kill()  # interrupted (Ctrl-C, SIGTERM, timeout): leave no evaluation running
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"{tag}: proctor evaluate failed ({proc.returncode}): {err.strip()[-800:]}")
    lines = [line for line in err.splitlines() if line.startswith("TIMINGS ")]
    warnings = [line for line in err.splitlines() if line.startswith("proctor: warning")]
    for warning in warnings:
        print(f"    {tag}: {warning[:160]}")
    return json.loads(lines[-1].split(" ", 1)[1]) if lines else {}


def timed_cmd(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[2:4]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed


def median_line(label: str, values: list[float], unit: str = "s") -> str:
    spread = f"min {min(values):.2f}, max {max(values):.2f}, n={len(values)}" if len(values) > 1 else "n=1"
    return f"{label:<52} median {statistics.median(values):7.3f} {unit}  ({spread}; {load()})"


def measure_store(store: str, uri: str, args: argparse.Namespace, answers: Path, folder: Path,
                  results: dict[str, dict[str, str]]) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "OPENAI_", "AZURE_", "MLFLOW_"))}
    base.update({"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_MODEL_CATALOG_URI": "",
                 "MLFLOW_GENAI_EVAL_MAX_RETRIES": "0", "PROCTOR_CONCURRENCY": str(args.workers),
                 "PYTHONPATH": str(ROOT)})
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    out = results.setdefault(store, {})
    for latency in args.latencies:
        with fake_judge(latency) as root:
            env = dict(base)
            env.update({"AZURE_API_KEY": "bench-key-not-secret", "AZURE_API_BASE": root,
                        "AZURE_API_VERSION": "2024-02-15-preview", "AZURE_OPENAI_ENDPOINT": root,
                        "AZURE_OPENAI_API_KEY": "bench-key-not-secret"})
            walls, per_row = [], []
            for attempt in range(args.repeat):
                tag = f"{store}-{latency:g}-{attempt}"
                started = time.perf_counter()
                timings = finish(evaluate_once(answers, folder, env, tag), tag)
                wall = time.perf_counter() - started
                walls.append(wall)
                phase = timings.get("evaluate_s")
                if phase is not None:
                    per_row.append(phase / args.n)
                phases = " ".join(f"{k[:-2]}={v:.2f}" for k, v in timings.items() if k.endswith("_s"))
                print(f"    {tag}: whole command {wall:.2f} s  [{phases}]  ({load()})", flush=True)
            line = median_line(f"{store}: evaluate {args.n} rows, judge {latency:g} s, whole command", walls)
            print(line, flush=True)
            out[f"evaluate judge {latency:g} s (whole command)"] = line
            if per_row:
                line = median_line(f"{store}: judge {latency:g} s, MLflow evaluate phase per row", per_row,
                                   "s/row")
                print(line, flush=True)
                out[f"evaluate phase per row, judge {latency:g} s"] = line
            if args.pair and latency == args.latencies[-1]:
                walls = []
                for attempt in range(args.repeat):
                    started = time.perf_counter()
                    procs = [evaluate_once(answers, folder, env, f"{store}-pair-{attempt}-{i}") for i in range(2)]
                    for i, proc in enumerate(procs):
                        finish(proc, f"{store}-pair-{attempt}-{i}")
                    walls.append(time.perf_counter() - started)
                    print(f"    {store} two at once #{attempt}: {walls[-1]:.2f} s ({load()})", flush=True)
                line = median_line(f"{store}: two evaluates at once, judge {latency:g} s, both done", walls)
                print(line, flush=True)
                out[f"two at once, judge {latency:g} s"] = line
    env = dict(base, OPENAI_API_KEY="bench", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    listed = subprocess.run([sys.executable, "-m", "tui.cli", "runs", "--json"], cwd=folder, env=env,
                            capture_output=True, text=True, check=True).stdout
    runs = json.loads(listed)
    run_id = runs[0]["run_id"]
    times = [timed_cmd([sys.executable, "-m", "tui.cli", "runs"], folder, env) for _ in range(args.repeat)]
    line = median_line(f"{store}: proctor runs ({len(runs)} runs)", times)
    print(line, flush=True)
    out["proctor runs"] = line
    detail = (f"from core.runs import load_run\nd = load_run({run_id!r})\n"
              f"assert len(d.results) == {args.n}, d.results_source")
    times = [timed_cmd([sys.executable, "-c", detail], folder, env) for _ in range(args.repeat)]
    line = median_line(f"{store}: run detail (load_run, new process)", times)
    print(line, flush=True)
    out["run detail"] = line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8, help="PROCTOR_CONCURRENCY (default 8)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server-workers", type=int, default=2, help="mlflow server --workers (default 2)")
    parser.add_argument("--latencies", default="0,0.2")
    parser.add_argument("--stores", default="local,server-sqlite,server-postgres")
    parser.add_argument("--pair", action="store_true", help="also two evaluates at once on each store")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so that the servers and the PostgreSQL cluster started here are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.latencies = [float(x) for x in args.latencies.split(",")]
    stores = args.stores.split(",")

    import pandas as pd

    from core.csvio import write_csv_atomic
    from core.store_setup import ensure_store

    print(f"{args.n} answered rows, PROCTOR_CONCURRENCY={args.workers}, judge latencies {args.latencies}, "
          f"repeat {args.repeat}, mlflow server --workers {args.server_workers}; cpus {os.cpu_count()}; {load()}",
          flush=True)
    results: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="proctor-bench-team-") as tmp:
        top = Path(tmp)
        answers = top / "answers.csv"
        write_csv_atomic(pd.DataFrame([{
            "question": f"Question {i}: what is {i} times 7?", "answer": str(i * 7),
            "llm_answer": str(i * 7 if i % 3 else i * 6), "model": "openai:/bench-model", "latency_s": "0.100",
            "prompt_tokens": "10", "completion_tokens": "3", "error": ""} for i in range(1, args.n + 1)]), answers)
        template = top / "template.db"
        ensure_store(f"sqlite:///{template}")  # "store already created": no 9 s migration in any figure
        for store in stores:
            folder = top / store
            folder.mkdir()
            print(f"== {store}", flush=True)
            try:
                if store == "local":
                    shutil.copyfile(template, folder / "mlflow.db")
                    measure_store(store, f"sqlite:///{folder / 'mlflow.db'}", args, answers, folder, results)
                elif store == "server-sqlite":
                    shutil.copyfile(template, folder / "server.db")
                    with mlflow_server(f"sqlite:///{folder / 'server.db'}", folder, args.server_workers) as url:
                        measure_store(store, url, args, answers, folder, results)
                elif store == "server-postgres":
                    missing = postgres_missing()
                    if missing:
                        print(f"  skipped: {missing}")
                        continue
                    with postgres_cluster() as backend, \
                            mlflow_server(backend, folder, args.server_workers) as url:
                        measure_store(store, url, args, answers, folder, results)
                else:
                    raise SystemExit(f"unknown store {store!r}")
            except RuntimeError as error:
                print(f"  {store} FAILED: {error}", flush=True)
    print("\n== summary")
    for lines in results.values():
        for line in lines.values():
            print(line)


if __name__ == "__main__":
    main()
