"""`proctor evaluate FILE.csv`: judge a model's answers with MLflow, log one run, print a summary and the run id.

With several `-m`, every model answers the benchmark at once and is judged by the same judge (core.multi_eval):
one run per model, tagged as one comparison, then the comparison table and sentences against the first model.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import replace

from core.errors import InputError

NAME = "evaluate"
ORDER = 40

SCORER_HELP = ("comma list of scorers (default: correctness,exact_match,contains_reference); also equivalence, "
               "relevance_to_query, guidelines, safety, fluency, or all")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME, help="evaluate a model on a benchmark (or judge an answers CSV) and log the run to MLflow",
        description="Evaluate a model with mlflow.genai.evaluate. FILE is a benchmark (the model answers it first, "
                    "with Proctor's own engine) or an answers CSV from `proctor answer` (judged as it is). The run "
                    "is logged to MLflow (MLFLOW_TRACKING_URI, else sqlite mlflow.db in this folder).",
        epilog="Judge credentials: azure:/ judges read AZURE_API_KEY, AZURE_API_BASE, AZURE_API_VERSION (derived "
               "from AZURE_OPENAI_* when unset); openai:/ judges read OPENAI_API_KEY and OPENAI_BASE_URL.")
    parser.add_argument("file", metavar="FILE.csv", help="a benchmark CSV or an answers CSV")
    parser.add_argument("--model", "-m", action="append", metavar="URI",
                        help="model URI that answers (a benchmark) or that answered (an answers file; default: its "
                             "model column). Repeat it (-m A -m B) to answer a benchmark with several models at once "
                             "and compare them with the first")
    parser.add_argument("--judge", "-j", help="judge model URI, e.g. azure:/gpt-4.1-nano, openai:/gpt-4.1-mini, "
                                              "local:/smollm2, or none (default: PROCTOR_JUDGE, else "
                                              "azure:/gpt-4.1-nano when Azure is configured)")
    parser.add_argument("--experiment", "-e", help="MLflow experiment (default: PROCTOR_EXPERIMENT, else proctor)")
    parser.add_argument("--run-name", help="MLflow run name (default: the model's name)")
    parser.add_argument("--scorers", "-s", help=SCORER_HELP)
    parser.add_argument("--judge-timeout", type=float, metavar="SECONDS",
                        help="seconds one judge verdict may take, retries included (default 30)")
    parser.add_argument("-o", "--output", metavar="RESULTS.csv",
                        help="write the per-row results here (the answers plus the judge's columns)")
    parser.add_argument("--fresh", action="store_true",
                        help="start over: for a benchmark, ask every question again instead of reusing an earlier "
                             "answers file by the same model; judge every row again instead of reusing the "
                             "verdicts the file holds from the same judge")
    parser.add_argument("--concurrency", "-c", type=int, metavar="N",
                        help="requests in flight at once, shared by all the models (default PROCTOR_CONCURRENCY, 8)")
    parser.add_argument("--force", action="store_true",
                        help="for a benchmark: answer even into an answers file holding another benchmark's rows or "
                             "verdicts on another model's answers (they go to a backup beside it first)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")
    parser.set_defaults(func=run, quick_exit=True)  # its work is on disk when it returns: no interpreter teardown


def _progress_printer(quiet: bool):  # noqa: ANN202 - a closure
    state = {"last": 0.0, "width": 0}
    live = sys.stderr.isatty() and not quiet

    def show(progress) -> None:  # noqa: ANN001 - core.evaluation.EvaluationProgress
        if not live:
            return
        now = time.monotonic()
        if now - state["last"] < 0.1 and progress.phase not in ("done", "logging"):
            return
        state["last"] = now
        text = f"{progress.phase}"
        if progress.total:
            text += f" {progress.done}/{progress.total}"
        if progress.scored:
            text += f", running accuracy {100 * progress.correct / progress.scored:.0f}%"
        if progress.errors:
            text += f", {progress.errors} error(s)"
        text += f"  {progress.elapsed_s:.0f} s"
        sys.stderr.write("\r" + text.ljust(state["width"]))
        sys.stderr.flush()
        state["width"] = len(text)

    def clear() -> None:
        if live and state["width"]:
            sys.stderr.write("\r" + " " * state["width"] + "\r")
            sys.stderr.flush()

    return show, clear


def _fmt(value: float | None, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "s":
        return f"{value:.2f} s"
    if kind == "int":
        return f"{int(value)}"
    return f"{value:.3f}"


def run(args: argparse.Namespace) -> int:
    from core.config import load_settings
    from core.evaluation import evaluate_file

    settings = load_settings()
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise InputError(f"--concurrency must be at least 1, not {args.concurrency}")
        settings = replace(settings, concurrency=args.concurrency)
    models = list(dict.fromkeys(args.model or []))
    if len(models) > 1:
        return _run_several(args, models, settings)
    show, clear = _progress_printer(args.quiet)
    cancel = threading.Event()
    try:
        summary = evaluate_file(
            args.file, model=models[0] if models else None, judge=args.judge, experiment=args.experiment,
            run_name=args.run_name, scorers=args.scorers, output=args.output, judge_timeout=args.judge_timeout,
            on_progress=show, cancel=cancel, settings=settings, fresh=args.fresh, force=args.force,
        )
    except KeyboardInterrupt:
        cancel.set()
        clear()
        raise
    finally:
        clear()
    for warning in summary.warnings:
        print(f"proctor: warning: {warning}", file=sys.stderr)
    print_summary(summary)
    return 0


def _run_several(args: argparse.Namespace, models: list[str], settings) -> int:  # noqa: ANN001 - Settings
    from core.multi_eval import evaluate_models
    from core.runs import paired_lines
    from core.safety import printable as clean
    from tui.commands.compare import metrics_table

    show, clear = _progress_printer(args.quiet)
    cancel = threading.Event()
    try:
        result = evaluate_models(
            args.file, models, judge=args.judge, experiment=args.experiment, run_name=args.run_name,
            scorers=args.scorers, output=args.output, judge_timeout=args.judge_timeout, on_progress=show,
            cancel=cancel, settings=settings, fresh=args.fresh, force=args.force,
        )
    except KeyboardInterrupt:
        cancel.set()
        clear()
        raise
    finally:
        clear()
    for warning in result.warnings + [w for s in result.summaries for w in s.warnings]:
        print(f"proctor: warning: {clean(warning)}", file=sys.stderr)
    for summary in result.summaries:
        print(f"== {clean(summary.model)}")
        print_summary(summary)
        print()
    print(f"comparison {result.comparison_id}: {len(result.summaries)} runs tagged proctor.comparison="
          f"{result.comparison_id}, each against {clean(result.summaries[0].model)} (A)")
    for comparison in result.comparisons:
        print()
        print(clean(f"== A {comparison.a.model} vs B {comparison.b.model}"))
        for warning in comparison.warnings:
            print(clean(f"warning: {warning}"))
        print(clean(metrics_table(comparison)))
        for line in paired_lines(comparison):
            print(clean(line))
    return 0


def summary_rows(summary) -> list[tuple[str, str]]:  # noqa: ANN001 - core.evaluation.EvaluationSummary
    """The summary table as (label, value) rows: shared by this command and the app's Evaluate pane."""
    from core.prices import format_cost
    from core.stats import interval_metric_names

    m = summary.metrics

    def pct(name: str) -> str:
        """A share with its 95% Wilson interval: `85.0% (95% CI 71.2-92.9%)`."""
        text = _fmt(m.get(name), "pct")
        low, high = (m.get(n) for n in interval_metric_names(name))
        if m.get(name) is not None and low is not None and high is not None:
            text += f" (95% CI {low * 100:.1f}-{high * 100:.1f}%)"
        return text

    rows = int(m.get("rows", 0))
    lines: list[tuple[str, str]] = [
        ("model", summary.model),
        ("judge", summary.judge or "none (code scorers only)"),
        ("rows", str(rows)),
    ]
    if "correctness" in summary.scorers:
        lines.append(("accuracy (errors count as wrong)", pct("accuracy")))
        lines.append(("correctness/mean (judged rows)", pct("correctness/mean")))
    else:
        lines.append(("accuracy (exact match)", pct("accuracy")))
    for name in summary.scorers:
        if name != "correctness":
            lines.append((f"{name}/mean", pct(f"{name}/mean")))
    lines.append(("judge errors", _fmt(m.get("judge_errors"), "int")))
    lines.append(("answer errors", _fmt(m.get("answer_errors"), "int")))
    lines.append(("latency mean / p95", f"{_fmt(m.get('latency_mean_s'), 's')} / {_fmt(m.get('latency_p95_s'), 's')}"))
    lines.append(("tokens (prompt / completion)",
                  f"{_fmt(m.get('prompt_tokens'), 'int')} / {_fmt(m.get('completion_tokens'), 'int')}"))
    cost = format_cost(m.get("cost_usd"))
    if summary.judge:
        cost += f" (judge: {format_cost(m.get('judge_cost_usd'))})"
    lines.append(("cost", cost))
    if "human_accuracy" in m:
        lines.append(("human accuracy", pct("human_accuracy")))
        lines.append(("judge-human agreement", _fmt(m.get("judge_human_agreement"), "pct")))
        lines.append(("judge-human kappa", _fmt(m.get("judge_human_kappa"))))
    return lines


def print_summary(summary) -> None:  # noqa: ANN001 - core.evaluation.EvaluationSummary
    """The summary table, then where the run is."""
    from core.safety import mask_url, one_line

    lines = summary_rows(summary)
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key.ljust(width)}  {value}")
    errors = summary.results[summary.results["judge_error"] != ""] if len(summary.results) else summary.results
    for _, row in errors.head(5).iterrows():
        print(f"  row {row['row']}: judge error: {one_line(row['judge_error'])}")
    if len(errors) > 5:
        print(f"  ... {len(errors) - 5} more (see the results CSV)")
    if summary.output:
        print(f"results: {summary.output}")
    if summary.answers_file and summary.answers_file != summary.output:
        print(f"answers: {summary.answers_file}")
    if summary.judged_file:
        synced = f"; {summary.human_synced} human verdict(s) sent to the run" if summary.human_synced else ""
        print(f"judge's verdicts written into {summary.judged_file}{synced} (`proctor grade` shows them)")
    print(f"experiment: {summary.experiment}  ({mask_url(summary.tracking_uri)})")
    print(f"run: {summary.run_name}")
    print(f"run id: {summary.run_id}")
