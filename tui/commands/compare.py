"""`proctor compare RUN_A RUN_B`: metrics side by side with deltas, and the questions whose verdicts differ.

RUN_A is the baseline, RUN_B the candidate: deltas are B - A. `--fail-if-worse METRIC:TOLERANCE` (repeatable)
exits 1 when B is worse than A on METRIC by more than TOLERANCE, for CI; see core.runs for which way is better.
"""

from __future__ import annotations

import argparse
import json
import textwrap

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
                             "lower is better for latency, errors and tokens); repeatable")
    parser.set_defaults(func=run)


def _wrap(text: str, indent: str, width: int = 100) -> str:
    text = " ".join((text or "").split()) or "-"
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent)


def run(args: argparse.Namespace) -> int:
    from core.runs import (
        check_fail_if_worse,
        compare_runs,
        format_delta,
        format_metric,
        parse_fail_if_worse,
        text_table,
    )

    # Parse the gates first: a typo in a CI option must fail fast, before MLflow is even imported.
    rules = [parse_fail_if_worse(text) for text in args.fail_if_worse]
    comparison = compare_runs(args.run_a, args.run_b)
    failures = check_fail_if_worse(comparison, rules)
    if args.json:
        data = comparison.to_dict()
        data["regressions"] = failures
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        a, b = comparison.a, comparison.b
        print(f"A  {a.short_id}  {a.name}  {a.model}  judge {a.judge or 'none'}  {a.date}")
        print(f"B  {b.short_id}  {b.name}  {b.model}  judge {b.judge or 'none'}  {b.date}")
        for warning in comparison.warnings:
            print(f"warning: {warning}")
        print()
        rows = [[m.name, format_metric(m.a, m.name), format_metric(m.b, m.name), format_delta(m.delta, m.name),
                 {"a": "A", "b": "B"}.get(m.better, "")] for m in comparison.metrics]
        print(text_table(["METRIC", "A", "B", "DELTA", "BETTER"], rows, right={1, 2, 3}))
        print()
        print(f"{comparison.matched_rows} questions matched; verdicts from {comparison.basis or 'nowhere'}.")
        for title, diffs in ((f"A right, B wrong ({len(comparison.a_right_b_wrong)})", comparison.a_right_b_wrong),
                             (f"B right, A wrong ({len(comparison.b_right_a_wrong)})", comparison.b_right_a_wrong)):
            print()
            print(title)
            for d in diffs:
                print(f"  row {d.row_a}: {' '.join(d.question.split())}")
                print(_wrap(f"reference: {d.reference}", "    "))
                print(_wrap(f"A ({d.verdict_a}): {d.answer_a}", "    "))
                print(_wrap(f"why: {d.rationale_a}", "      "))
                print(_wrap(f"B ({d.verdict_b}): {d.answer_b}", "    "))
                print(_wrap(f"why: {d.rationale_b}", "      "))
        for failure in failures:
            print(f"regression: {failure}")
    if failures:
        return 1
    return 0
