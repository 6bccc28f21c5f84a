"""`proctor compare RUN_A RUN_B`: metrics side by side with deltas, and the questions whose verdicts differ.

RUN_A is the baseline, RUN_B the candidate: deltas are B - A, each share with its 95% interval, then the paired
comparison on the questions both runs answered (core.stats: exact McNemar, paired intervals, MDE) in numbers and
plain sentences. `--fail-if-worse METRIC:TOLERANCE` (repeatable) exits 1 when B is worse than A on METRIC by more
than TOLERANCE, for CI; with `--significant` only when the paired test also says B is worse at 5%.
"""

from __future__ import annotations

import argparse
import json
import textwrap

from core.safety import printable as clean

NAME = "compare"
ORDER = 51


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME, help="compare two runs: metric deltas and the questions whose verdicts differ",
        description="Compare run B with run A (the baseline): metrics side by side with deltas (B - A), and the "
                    "questions A got right and B wrong, and the reverse, with the judge's rationales. A run is "
                    "named by its id, a unique id prefix or its run name (the latest run of that name).")
    parser.add_argument("run_a", metavar="RUN_A", help="baseline run: id, id prefix or run name")
    parser.add_argument("run_b", metavar="RUN_B", help="candidate run: id, id prefix or run name")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--fail-if-worse", action="append", default=[], metavar="METRIC:TOLERANCE",
                        help="exit 1 if B is worse than A on METRIC by more than TOLERANCE (e.g. accuracy:0.02; "
                             "lower is better for latency, errors, tokens and cost); repeatable")
    parser.add_argument("--significant", action="store_true",
                        help="with --fail-if-worse: fail only when B is worse by more than the tolerance AND the "
                             "paired test on the matched questions says so at 5%% (accuracy, <scorer>/mean, "
                             "latency_mean_s)")
    parser.set_defaults(func=run)


def _wrap(text: str, indent: str, width: int = 100) -> str:
    text = " ".join(clean(text or "").split()) or "-"
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent)


def metrics_table(comparison) -> str:  # noqa: ANN001 - core.runs.Comparison
    """The metrics of both runs as a text table: each share with its 95% interval, B - A, the paired test's p-value,
    and which run is better (only where that test is significant at 5%)."""
    from core.runs import format_delta, format_metric, format_share, text_table
    from core.stats import format_p

    def cell(value: float | None, interval: tuple[float, float] | None, name: str) -> str:
        return format_share(value, interval) if interval is not None else format_metric(value, name)

    rows = [[m.name, cell(m.a, m.a_ci, m.name), cell(m.b, m.b_ci, m.name), format_delta(m.delta, m.name),
             format_p(m.p_value).removeprefix("p ").removeprefix("= ") if m.p_value is not None else "",
             {"a": "A", "b": "B"}.get(m.better, "")] for m in comparison.metrics]
    return text_table(["METRIC", "A [95% CI]", "B [95% CI]", "B - A", "P", "BETTER"], rows, right={1, 2, 3, 4})


def run(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.runs import check_fail_if_worse, compare_runs, paired_lines, parse_fail_if_worse

    # Parse the gates first: a typo in a CI option must fail fast, before MLflow is even imported.
    rules = [parse_fail_if_worse(text) for text in args.fail_if_worse]
    if args.significant and not rules:
        raise InputError("--significant qualifies --fail-if-worse: give at least one --fail-if-worse METRIC:TOL")
    comparison = compare_runs(args.run_a, args.run_b)
    failures = check_fail_if_worse(comparison, rules, significant=args.significant)
    if args.json:
        data = comparison.to_dict()
        data["regressions"] = failures
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        a, b = comparison.a, comparison.b
        print(clean(f"A  {a.short_id}  {a.name}  {a.model}  judge {a.judge or 'none'}  {a.date}"))
        print(clean(f"B  {b.short_id}  {b.name}  {b.model}  judge {b.judge or 'none'}  {b.date}"))
        for warning in comparison.warnings:
            print(clean(f"warning: {warning}"))
        print()
        print(clean(metrics_table(comparison)))
        print()
        print(clean(f"{comparison.matched_rows} questions matched; verdicts from {comparison.basis or 'nowhere'}."))
        for line in paired_lines(comparison):
            print(clean(line))
        for title, diffs in ((f"A right, B wrong ({len(comparison.a_right_b_wrong)})", comparison.a_right_b_wrong),
                             (f"B right, A wrong ({len(comparison.b_right_a_wrong)})", comparison.b_right_a_wrong)):
            print()
            print(title)
            for d in diffs:
                print(clean(f"  row {d.row_a}: {' '.join(d.question.split())}"))
                print(_wrap(f"reference: {d.reference}", "    "))
                print(_wrap(f"A ({d.verdict_a}): {d.answer_a}", "    "))
                print(_wrap(f"why: {d.rationale_a}", "      "))
                print(_wrap(f"B ({d.verdict_b}): {d.answer_b}", "    "))
                print(_wrap(f"why: {d.rationale_b}", "      "))
        for failure in failures:
            print(clean(f"regression: {failure}"))
    if failures:
        return 1
    return 0
