"""`proctor answer BENCHMARK.csv`: ask the model every question, save a spreadsheet-ready answers CSV.

Progress goes to stderr as one `\\r`-redrawn line when stderr is a terminal (or with `--progress`); the summary to
stdout. Exit 0 when every row was answered, 1 when some failed after their retries (they are in the file, marked),
2 for a bad command line, input file or setting, 130 on Ctrl-C (what was received is saved first).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

NAME = "answer"
ORDER = 20

BAR_WIDTH = 24


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME, help="answer every question of a benchmark CSV; save the answers CSV",
        description="Ask the model every question of BENCHMARK.csv and save the answers beside the questions, "
                    "ready for a spreadsheet. Running the same command again resumes: answered rows are not sent "
                    "again, failed ones are retried.",
        epilog="Exit status: 0 every row answered; 1 some rows failed (marked in the error column); 2 bad command "
               "line, input file or setting, or OUT.csv written by another process or holding verdicts that "
               "--force would move; 130 interrupted (what was received is saved).")
    parser.add_argument("benchmark", metavar="BENCHMARK.csv", help="the questions (a question column; an answer "
                        "column for grading later)")
    parser.add_argument("-o", "--output", metavar="OUT.csv",
                        help="where to save the answers (default: BENCHMARK.answers.PROVIDER-MODEL.csv beside the "
                             "input)")
    parser.add_argument("--model", "-m", help="model URI: azure:/DEPLOYMENT, openai:/MODEL or local:/smollm2 "
                        "(default: PROCTOR_MODEL, else the first configured provider)")
    parser.add_argument("--concurrency", "-c", type=_positive, metavar="N",
                        help="requests in flight at once (default: PROCTOR_CONCURRENCY, else 8)")
    parser.add_argument("--limit", "-n", type=_positive, metavar="N",
                        help="answer only the first N rows (a trial run; run again without it to finish)")
    parser.add_argument("--fresh", action="store_true",
                        help="start over: ask every question again (earlier answers and their verdicts go to a "
                             "backup beside OUT.csv)")
    parser.add_argument("--force", action="store_true",
                        help="write even over another benchmark's answers, a file that is not an answers file, or "
                             "verdicts given on another model's answers (a backup is still made first)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    parser.add_argument("--progress", action="store_true",
                        help="draw the progress bar even when stderr is not a terminal")
    # Every answer is in OUT.csv (fsync'd) and the save thread joined when `run` returns: no teardown needed.
    parser.set_defaults(func=run, quick_exit=True)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class ProgressBar:
    """One line on stderr, redrawn with `\\r`: rows done, rate, ETA, errors so far."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.width = 0
        self.drawn = False

    def __call__(self, progress) -> None:  # noqa: ANN001 - core.benchmark.Progress, imported lazily
        total = max(progress.total, 1)
        filled = int(BAR_WIDTH * progress.done / total)
        line = (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress.done}/{progress.total} rows  "
                f"{progress.rate:.1f}/s  ETA {_duration(progress.eta_s)}  errors {progress.failed}")
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _report(summary, out: TextIO) -> None:  # noqa: ANN001 - core.benchmark.AnswerSummary
    parts = [f"answered {summary.answered}", f"failed {summary.failed}", f"skipped {summary.skipped}"]
    if summary.already_done:
        parts.append(f"already done {summary.already_done}")
    if summary.not_sent:
        parts.append(f"not sent {summary.not_sent}")
    print(f"{', '.join(parts)} (of {summary.rows} rows, {summary.model}) in {summary.elapsed_s:.1f} s", file=out)
    if summary.latency_mean_s is not None:
        print(f"latency mean {summary.latency_mean_s:.3f} s, p95 {summary.latency_p95_s:.3f} s; tokens "
              f"{summary.prompt_tokens} prompt, {summary.completion_tokens} completion", file=out)
    if summary.failed:
        print(f"{summary.failed} row(s) failed (see the error column): run the same command again to retry them",
              file=out)
    print(f"saved {summary.out}", file=out)


def run(args: argparse.Namespace) -> int:
    from core.benchmark import AnswerInterrupted, answer_benchmark, load_benchmark
    from core.config import load_settings
    from tui.cli import interrupted_status

    settings = load_settings()
    bench = load_benchmark(args.benchmark)
    if not args.quiet:
        for warning in bench.warnings:
            print(f"proctor: warning: {warning}", file=sys.stderr)
    show_bar = not args.quiet and (args.progress or sys.stderr.isatty())
    bar = ProgressBar(sys.stderr) if show_bar else None
    if not args.quiet and (args.model or settings.default_model).startswith("local:"):
        from core.local_model import DEMO_WARNING

        print(DEMO_WARNING, file=sys.stderr)
    started = time.perf_counter()
    try:
        summary = answer_benchmark(bench.path, args.output, model=args.model, concurrency=args.concurrency,
                                   limit=args.limit, fresh=args.fresh, force=args.force, on_progress=bar,
                                   settings=settings, benchmark=bench)
    except AnswerInterrupted as interrupted:
        if bar:
            bar.close()
        kept = interrupted.summary
        if kept.backup_note:
            print(f"proctor: warning: {kept.backup_note}", file=sys.stderr)
        print(f"proctor: interrupted: kept {kept.answered + kept.already_done} answer(s) in {kept.out}; run the same "
              "command again to resume", file=sys.stderr)
        return interrupted_status()
    finally:
        if bar:
            bar.close()
    for warning in summary.warnings:
        # Where a person's verdicts went is said even with --quiet.
        if warning not in bench.warnings and (not args.quiet or warning == summary.backup_note):
            print(f"proctor: warning: {warning}", file=sys.stderr)
    if not args.quiet:
        _report(summary, sys.stdout)
        if summary.answered + summary.failed == 0 and summary.already_done:
            print(f"nothing to send: every row was already answered ({time.perf_counter() - started:.1f} s); "
                  "--fresh starts over", file=sys.stdout)
    return summary.exit_code
