"""`proctor grade ANSWERS.csv`: grade answers by hand in the app's Grade pane, or print the statistics.

Without --stats the app opens on the Grade pane for the file. The file is checked first (exists, is a CSV with an
llm_answer column, the sample asked for fits it, no other writer holds it) so that a bad file reads as a one-line
error, not a screen. --stats only reads, so it works while another process writes the file.
"""

from __future__ import annotations

import argparse
import json

NAME = "grade"
ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME, help="grade answers by hand (verdicts saved into the CSV), or print the statistics",
        description="Grade an answers CSV by hand in the Grade pane: y correct, n incorrect, s skip, u undo, "
                    "e note, g next ungraded, b blind, ? all keys. Each verdict is saved into the file at once "
                    "(columns human_verdict and human_note).")
    parser.add_argument("file", metavar="ANSWERS.csv", help="the answers CSV (from `proctor answer` or evaluate)")
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
    from core.grading import GradingSession, format_stats

    if args.json and not args.stats:
        raise InputError("--json goes with --stats")
    if args.seed is not None and args.sample is None:
        raise InputError("--seed goes with --sample N")
    if args.stats:
        if args.sample is not None:
            raise InputError("--stats reads the file as it is: run it without --sample")
        session = GradingSession(args.file, read_only=True)  # only reads: no lock, works beside a writer
        stats = session.stats()
        if args.json:
            print(json.dumps({"file": str(args.file), **stats.as_dict()}, ensure_ascii=False))
        else:
            print(format_stats(stats, str(args.file)))
        return 0
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
