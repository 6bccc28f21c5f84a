"""`proctor runs`: the evaluation runs in the tracking store, newest first, as an aligned table or JSON; and
`proctor runs RUN`: one run opened, its shares and metrics, then one line per question with its verdict.

Each share is shown with its 95% Wilson interval (`0.850 [0.71-0.93]`), and the cost of the model's answers
("unknown" when the model has no price); `--json` carries `shares` ({share, ci_low, ci_high} per share),
`cost_usd` and `judge_cost_usd` (null when unknown), and for one run its `results` (one object per row).
"""

from __future__ import annotations

import argparse
import json

from core.safety import printable as clean

NAME = "runs"
ORDER = 50


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME, help="list evaluation runs: date, model, judge, rows, main metrics, status",
        description="List the evaluation runs of an experiment, newest first; or, given RUN, open that run: its "
                    "shares with their 95%% intervals, its metrics, and one line per question with the verdict. "
                    "The store is MLFLOW_TRACKING_URI, else mlflow.db in the current folder.")
    parser.add_argument("run_ref", nargs="?", metavar="RUN",
                        help="open this run (id, unique id prefix or run name, in any experiment)")
    parser.add_argument("--experiment", "-e", metavar="NAME",
                        help="experiment to list (default: PROCTOR_EXPERIMENT, else 'proctor')")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON (every metric and param)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.runs import MAIN_METRICS, experiment_name, format_metric, format_share, list_runs, text_table
    from core.stats import is_share_metric
    from core.store import check_store

    # A dead server, a foreign or corrupt SQLite file: one line in seconds, not MLflow's retries for minutes.
    check_store(experiment_name(args.experiment), writable=False)
    if args.run_ref is not None:
        return show_run(args.run_ref, args.json)
    runs = list_runs(args.experiment)
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=2, ensure_ascii=False))
        return 0
    if not runs:
        print(f"No runs in experiment {experiment_name(args.experiment)!r} yet: `proctor evaluate` logs them.")
        return 0
    # Only the metric columns some run has, so that a listing of judge-less runs is not full of blanks.
    metrics = [m for m in MAIN_METRICS if any(m in r.metrics for r in runs)]
    headers = (["DATE", "RUN", "NAME", "MODEL", "JUDGE", "ROWS"] + [MAIN_METRICS[m] for m in metrics]
               + ["COST", "STATUS"])

    def cell(run, name: str) -> str:  # noqa: ANN001 - core.runs.RunInfo
        if is_share_metric(name):
            return format_share(run.metrics.get(name), run.interval(name))
        return format_metric(run.metrics.get(name), name)

    rows = [[r.date, r.short_id, r.name, r.model, r.judge, "" if r.rows is None else str(r.rows)]
            + [cell(r, m) for m in metrics] + [format_metric(r.cost_usd, "cost_usd"), r.status] for r in runs]
    right = {5} | set(range(6, 6 + len(metrics) + 1))
    print(clean(text_table(headers, rows, right)))
    return 0


def _clip(text: str, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def show_run(ref: str, as_json: bool) -> int:
    """`proctor runs RUN`: the run's summary, its other metrics, then its rows (question, verdict, answer)."""
    from core.runs import format_metric, load_run, parse_verdict, text_table
    from core.stats import is_interval_metric

    detail = load_run(ref)
    if as_json:
        print(json.dumps(detail.to_dict(), indent=2, ensure_ascii=False))
        return 0
    info = detail.info
    print(clean(f"Run {info.short_id}  {info.name}  {info.model}  judge {info.judge or 'none'}  {info.date}  "
                f"{info.status}"))
    for name, found in info.shares.items():
        if found["share"] is None:
            continue
        interval = (f" [95% CI {found['ci_low']:.3f}-{found['ci_high']:.3f}]"
                    if found["ci_low"] is not None and found["ci_high"] is not None else "")
        print(clean(f"  {name} {found['share']:.3f}{interval}"))
    others = [f"{name} {format_metric(value, name)}" for name, value in sorted(info.metrics.items())
              if name not in info.shares and not is_interval_metric(name)]
    if others:
        print(clean("  " + ", ".join(others)))
    source = {"artifact": "results/results.csv", "traces": "trace assessments"}.get(detail.results_source)
    if not detail.rows:
        print("\nThis run has no per-row results.")
        return 0
    print(f"\n{len(detail.rows)} rows from {source}:")

    def verdict(row: dict[str, str]) -> str:
        found = parse_verdict(row.get("judge_verdict"))
        text = {True: "correct", False: "incorrect", None: "-"}[found]
        return text + (" (judge error)" if row.get("judge_error") else "") + (
            " (answer error)" if row.get("answer_error") else "")

    rows = [[row.get("row", str(i)), verdict(row), _clip(row.get("question", ""), 50),
             _clip(row.get("llm_answer", ""), 30), _clip(row.get("reference", ""), 20)]
            for i, row in enumerate(detail.rows, start=1)]
    print(clean(text_table(["ROW", "VERDICT", "QUESTION", "ANSWER", "REFERENCE"], rows, right={0})))
    return 0
