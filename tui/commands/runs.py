"""`proctor runs`: the evaluation runs in the tracking store, newest first, as an aligned table or JSON.

Each share is shown with its 95% Wilson interval (`0.850 [0.71-0.93]`), and the cost of the model's answers
("unknown" when the model has no price); `--json` carries `shares` ({share, ci_low, ci_high} per share),
`cost_usd` and `judge_cost_usd` (null when unknown).
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
        description="List the evaluation runs of an experiment, newest first. The store is MLFLOW_TRACKING_URI, "
                    "else mlflow.db in the current folder.")
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
