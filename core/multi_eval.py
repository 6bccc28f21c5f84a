"""Several models evaluated on one benchmark as one comparison: `proctor evaluate FILE -m A -m B [-m ...]`.

1. Every model answers at once, each in its own thread with its own event loop (core.benchmark.answer_benchmark,
   so each model's answers file is written, resumed and named exactly as `proctor answer` does). The models share
   one concurrency budget (PROCTOR_CONCURRENCY / --concurrency): it is divided among them, at least one request in
   flight per model.
2. Each model's answers are judged by the same judge, one run after the other (mlflow.genai.evaluate is not
   thread-safe), each logged as an ordinary evaluation run (core.evaluation.evaluate_file).
3. The runs share the tag `proctor.comparison` (one id for the whole command), plus `proctor.comparison_baseline`
   (the first model) and `proctor.comparison_models`. A shared tag rather than an MLflow parent run: each run stays
   a complete evaluation run that `proctor runs`, `compare` and `--fail-if-worse` treat like any other, no empty
   parent run appears in the listings, and the MLflow UI still finds the group with
   `tags."proctor.comparison" = "ID"`.
4. Every model after the first is compared with the first, paired on the questions both answered (core.runs).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import InputError

if TYPE_CHECKING:
    from core.config import Settings
    from core.evaluation import EvaluationProgress, EvaluationSummary
    from core.runs import Comparison


@dataclass
class MultiEvaluation:
    """What a multi-model evaluation did: one summary per model (in the order given), and each model after the
    first compared with the first."""

    comparison_id: str
    summaries: list[EvaluationSummary]
    comparisons: list[Comparison]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def split_budget(budget: int, models: int) -> list[int]:
    """`budget` requests in flight divided among `models` (the first ones get the remainder), at least 1 each."""
    if models < 1:
        return []
    share, extra = divmod(max(1, budget), models)
    return [max(1, share + (1 if i < extra else 0)) for i in range(models)]


def _output_for(output: str | os.PathLike[str] | None, model_uri: str) -> Path | None:
    """`-o results.csv` with several models: `results.MODEL.csv` for each."""
    if output is None:
        return None
    from core.benchmark import default_output_path

    out = Path(output)
    slug = default_output_path(out, model_uri).name.split(".answers.", 1)[1]  # MODEL.csv, as the answers files
    return out.with_name(f"{out.stem}.{slug}")


def evaluate_models(
    path: str | os.PathLike[str],
    models: list[str],
    *,
    judge: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    scorers: str | list[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    judge_timeout: float | None = None,
    on_progress: Callable[[EvaluationProgress], None] | None = None,
    cancel: threading.Event | None = None,
    settings: Settings | None = None,
    fresh: bool = False,
    concurrency: int | None = None,
    force: bool = False,
) -> MultiEvaluation:
    """Answer the benchmark at `path` with every model at once, judge each with the same judge, log one run per
    model tagged as one comparison, and compare each model after the first with the first.

    Raises `InputError` / `ConfigError` for bad input or settings before any question is sent (every model and
    the judge are checked first), and `EvaluationCancelled` when cancelled.
    """
    from core.benchmark import answer_benchmark, is_answers_file, load_benchmark
    from core.config import load_settings, resolve_model
    from core.evaluation import EvaluationCancelled, EvaluationProgress, evaluate_file
    from core.judges import resolve_judge
    from core.prices import load_prices
    from core.runs import experiment_name
    from core.scorers import needs_judge, parse_scorers
    from core.store import check_store

    started = time.perf_counter()
    cancel = cancel or threading.Event()
    settings = settings or load_settings()
    path = Path(path)
    uris = [resolve_model(m, settings).uri for m in models]
    if len(set(uris)) != len(uris):
        raise InputError(f"the same model is named twice: {', '.join(uris)}")
    if len(uris) < 2:
        raise InputError("a comparison needs at least two models (-m A -m B)")
    if concurrency is not None and concurrency < 1:
        raise InputError(f"concurrency must be at least 1, not {concurrency}")
    load_prices()  # a bad PROCTOR_PRICES file fails now, before any model is asked
    if any(needs_judge(n) for n in parse_scorers(scorers)):
        resolve_judge(judge, settings)  # a missing judge credential fails now, not after answering
    bench = load_benchmark(path)
    if is_answers_file(bench.frame):
        raise InputError(f"{path.name} already holds one model's answers: several models need the benchmark "
                         "itself (questions and reference answers)")
    # The store, before any model is asked (evaluate_file checks it again for each run, by then it is cheap).
    check_store(experiment_name(experiment), secrets=list(settings.secrets()))

    def report(phase: str, done: int = 0, total: int = 0, errors: int = 0, message: str = "") -> None:
        if on_progress is not None:
            on_progress(EvaluationProgress(phase, done, total, errors, time.perf_counter() - started, message))

    # 1. every model at once, one budget
    budgets = split_budget(concurrency or settings.concurrency, len(uris))
    progress: dict[str, Any] = {}
    lock = threading.Lock()

    def answered(uri: str) -> Callable[[Any], None]:
        def on(p: Any) -> None:
            with lock:
                progress[uri] = p
                done = sum(x.done for x in progress.values())
                total = sum(x.total for x in progress.values())
                failed = sum(x.failed for x in progress.values())
            report("answering", done, total, failed, f"answering with {len(uris)} models {done}/{total}")
        return on

    outcomes: dict[str, Any] = {}

    def answer(uri: str, budget: int) -> None:
        try:
            outcomes[uri] = answer_benchmark(path, model=uri, concurrency=budget, on_progress=answered(uri),
                                             cancel=cancel, settings=settings, benchmark=load_benchmark(path),
                                             fresh=fresh, force=force)
        except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread below
            outcomes[uri] = error
            cancel.set()  # a refused key or unknown model stops the others too: the comparison cannot finish

    report("answering", 0, 0, message=f"answering with {len(uris)} models")
    t0 = time.perf_counter()
    threads = [threading.Thread(target=answer, args=(uri, budget), name=f"answer-{i}", daemon=True)
               for i, (uri, budget) in enumerate(zip(uris, budgets, strict=True))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        cancel.set()
        for thread in threads:
            thread.join()
        raise
    timings = {"answer_s": time.perf_counter() - t0}
    errors = [outcomes[uri] for uri in uris if isinstance(outcomes.get(uri), BaseException)]
    if errors:
        raise errors[0]
    if cancel.is_set():
        raise EvaluationCancelled("the evaluation was cancelled while the models were answering (answers so far "
                                  f"are in {', '.join(outcomes[u].out.name for u in uris)})")

    # 2. one run per model, the same judge, one comparison tag
    comparison_id = uuid.uuid4().hex[:12]
    tags = {"proctor.comparison": comparison_id, "proctor.comparison_baseline": uris[0],
            "proctor.comparison_models": ",".join(uris)}
    summaries: list[EvaluationSummary] = []
    warnings: list[str] = []
    for i, uri in enumerate(uris, start=1):
        answers = outcomes[uri]
        if answers.already_done:
            warnings.append(f"{uri}: {answers.already_done} answer(s) reused from {answers.out.name} (an earlier "
                            "run by the same model): pass --fresh to ask again")

        def step(p: EvaluationProgress, i: int = i, uri: str = uri) -> None:
            report(p.phase, p.done, p.total, p.errors, f"model {i}/{len(uris)} {uri}: {p.message}")

        summary = evaluate_file(path, model=uri, judge=judge, experiment=experiment,
                                run_name=f"{run_name}-{uri.partition(':')[2].strip('/')}" if run_name else None,
                                scorers=scorers, output=_output_for(output, uri), judge_timeout=judge_timeout,
                                on_progress=step, cancel=cancel, settings=settings, tags=tags, answered=answers.out,
                                fresh=fresh)
        summaries.append(summary)
    timings["judge_s"] = time.perf_counter() - t0 - timings["answer_s"]

    # 3. each model against the first, paired
    from core.runs import compare_runs

    comparisons = [compare_runs(summaries[0].run_id, s.run_id) for s in summaries[1:]]
    timings["total_s"] = time.perf_counter() - started
    report("done", len(uris), len(uris), message="done")
    return MultiEvaluation(comparison_id, summaries, comparisons, warnings, timings)
