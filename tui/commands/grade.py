"""`proctor grade ANSWERS.csv`: grade answers by hand in the app's Grade pane, or print the statistics.

Without --stats the app opens on the Grade pane for the file. The file is checked first (exists, is a CSV with an
llm_answer column, the sample asked for fits it, no other writer holds it) so that a bad file reads as a one-line
error, not a screen. --stats only reads, so it works while another process writes the file.
"""

from __future__ import annotations

import argparse
import json
import sys

NAME = "grade"
ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME, help="grade answers by hand (verdicts saved into the CSV), or print the statistics",
        description="Grade an answers CSV by hand in the Grade pane: y correct, n incorrect, s skip, u undo, "
                    "e note, g next ungraded, b blind, ? all keys. Each verdict is saved into the file at once "
                    "(columns human_verdict and human_note).")
    parser.add_argument("file", metavar="ANSWERS.csv", nargs="?",
                        help="the answers CSV (from `proctor answer` or evaluate)")
    parser.add_argument("--run", metavar="RUN",
                        help="grade an evaluation run's rows instead of a file: its answers CSV when it is here, "
                             "else a local copy made from the run (NAME.RUNID.graded.csv); verdicts go to that run")
    parser.add_argument("--sync", action="store_true",
                        help="send the verdicts not yet in MLflow (rows of an evaluation run) as HUMAN feedback on "
                             "their traces, update the run's judge-vs-human metrics, and exit")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="grade a reproducible random sample of N rows (saved in the file's human_sample column)")
    parser.add_argument("--seed", type=int, metavar="S", help="seed of the sample (default 0)")
    parser.add_argument("--stats", action="store_true",
                        help="print the statistics (share correct, Wilson 95%% CI, agreement with the judge) "
                             "instead of opening the app")
    parser.add_argument("--json", action="store_true", help="with --stats: print them as one JSON object")
    parser.add_argument("--blind", action="store_true", help="start in blind mode (model and run hidden)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.grading import GradingSession

    if args.json and not args.stats:
        raise InputError("--json goes with --stats")
    if args.run and args.file:
        raise InputError("give an answers CSV or --run RUN, not both")
    if args.run:
        from core.run_answers import answers_for_run

        path, how = answers_for_run(args.run)
        print({"answers": f"grading {path} (the run's answers file)", "resumed": f"grading {path} (made earlier "
               "from the run)", "created": f"grading {path} (made now from the run's results)"}[how],
              file=sys.stderr)
        args.file = str(path)
    if not args.file:
        raise InputError("name an answers CSV to grade, or --run RUN")
    if args.sync:
        if args.stats or args.sample is not None:
            raise InputError("--sync goes alone: run --stats or --sample separately")
        return _sync(args.file)
    if args.seed is not None and args.sample is None:
        raise InputError("--seed goes with --sample N")
    if args.stats:
        if args.sample is not None:
            raise InputError("--stats reads the file as it is: run it without --sample")
        return _stats(args.file, args.json)
    # Open (and draw or check the sample) before the screen is taken: errors stay one line, and a file another
    # writer holds (`proctor answer` on it, another `proctor grade`) exits 2 naming its pid. The pane then takes
    # the lock itself (were it taken in between, the pane opens the file read-only and says so).
    with GradingSession(args.file, sample=args.sample, seed=args.seed):
        pass
    from tui.app import ProctorApp

    ProctorApp(pane="grade", grade_path=args.file, grade_blind=args.blind).run()
    import threading

    if threading.current_thread() is threading.main_thread():
        from tui.quick_exit import exit_process

        exit_process(0)  # every verdict is saved before the next row shows: nothing is left to tear down slowly
    return 0


def _stats(path: str, as_json: bool) -> int:
    from core.agreement import describe, judge_reports
    from core.feedback import pending_in_frame
    from core.grading import GradingSession, format_stats
    from core.safety import one_line

    with GradingSession(path, read_only=True) as session:
        stats = session.stats()
        reports, notes = judge_reports(session.frame, session.question_column, session.path)
        unsent = len(pending_in_frame(session.frame))
    if as_json:
        print(json.dumps({"file": str(path), **stats.as_dict(), "judges": [r.as_dict() for r in reports],
                          "not_in_mlflow": unsent, "notes": notes}, ensure_ascii=False))
        return 0
    print(format_stats(stats, str(path)))
    if reports:
        print("judges vs you (rows both graded; 95% intervals), best first:")
        for report in reports:
            chance = {True: "more than chance", False: "not clearly more than chance", None: ""}[report.beyond_chance]
            run = f" (run {report.run_id[:8]})" if report.run_id else ""
            print(f"  {one_line(report.judge)}{run}: {describe(report.stats)}" + (f"; {chance}" if chance else ""))
    if unsent:
        print(f"not in MLflow yet: {unsent} verdict(s) (`proctor grade {path} --sync` sends them)")
    for note in notes:
        print(f"proctor: warning: {one_line(note)}", file=sys.stderr)
    return 0


def _sync(path: str) -> int:
    from core.feedback import sync_file
    from core.safety import one_line

    report = sync_file(path)
    if report.sent or report.already or not report.failed:
        print(f"{report.sent} verdict(s) sent to MLflow, {report.already} already there"
              + (f"; metrics updated on run(s) {', '.join(r[:8] for r in report.runs)}" if report.runs else ""))
    if report.failed:
        print(f"proctor: error: {report.failed} verdict(s) not sent, MLflow unreachable "
              f"({one_line(report.error)}): they stay pending; run --sync again later", file=sys.stderr)
        return 1
    return 0
