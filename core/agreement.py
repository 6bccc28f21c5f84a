"""How far a judge agrees with the human grader: agreement, Cohen's kappa, their intervals, the confusion counts.

Used by the Grade pane's stats line, `proctor grade --stats` (one line per judge that judged the file) and the
metrics a run carries once human verdicts are synced to MLflow (`run_metrics`).

- Agreement is a share of rows: its 95% interval is Wilson's (`core.stats.wilson_interval`).
- Kappa's 95% interval uses the large-sample standard error of Cohen (1960),
  SE = sqrt(p_o (1 - p_o) / (n (1 - p_e)^2)), clipped to [-1, 1]: simple, and honest enough for the tens to
  hundreds of rows a person grades (statistics-facts.md: "the large-sample SE" or a bootstrap).
- Kappa is undefined (None) when chance agreement is 1: both raters gave every row the same single label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.grading import CORRECT, INCORRECT
from core.stats import Z_95, wilson_interval

if TYPE_CHECKING:
    import pandas as pd

HUMAN_PREFIX = "human/"
PAIR_PREFIX = "judge_human/"


@dataclass
class JudgeHuman:
    """The human's verdicts on some rows, and a judge's on the rows both graded."""

    graded: int  # rows the human graded
    human_correct: int
    compared: int  # rows both graded
    both_correct: int
    both_incorrect: int
    judge_only_correct: int
    human_only_correct: int

    @property
    def human_accuracy(self) -> float | None:
        return self.human_correct / self.graded if self.graded else None

    @property
    def human_accuracy_ci(self) -> tuple[float, float]:
        return wilson_interval(self.human_correct, self.graded)

    @property
    def agreed(self) -> int:
        return self.both_correct + self.both_incorrect

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def agreement_ci(self) -> tuple[float, float]:
        return wilson_interval(self.agreed, self.compared)

    def _chance(self) -> float | None:
        n = self.compared
        if not n:
            return None
        judge_yes = (self.both_correct + self.judge_only_correct) / n
        human_yes = (self.both_correct + self.human_only_correct) / n
        return judge_yes * human_yes + (1 - judge_yes) * (1 - human_yes)

    @property
    def kappa(self) -> float | None:
        chance, observed = self._chance(), self.agreement
        if chance is None or observed is None or chance >= 1.0:
            return None
        return (observed - chance) / (1 - chance)

    @property
    def kappa_ci(self) -> tuple[float, float] | None:
        kappa, chance, observed = self.kappa, self._chance(), self.agreement
        if kappa is None or chance is None or observed is None:
            return None
        se = math.sqrt(observed * (1 - observed) / (self.compared * (1 - chance) ** 2))
        return max(-1.0, kappa - Z_95 * se), min(1.0, kappa + Z_95 * se)

    def as_dict(self) -> dict[str, object]:
        kappa_ci = self.kappa_ci
        return {
            "graded": self.graded, "human_correct": self.human_correct, "human_accuracy": self.human_accuracy,
            "human_accuracy_ci95": list(self.human_accuracy_ci), "compared": self.compared,
            "agreement": self.agreement, "agreement_ci95": list(self.agreement_ci) if self.compared else None,
            "kappa": self.kappa, "kappa_ci95": list(kappa_ci) if kappa_ci else None,
            "both_correct": self.both_correct, "both_incorrect": self.both_incorrect,
            "judge_only_correct": self.judge_only_correct, "human_only_correct": self.human_only_correct,
        }


def judge_human(human: Sequence[str], judge: Sequence[str]) -> JudgeHuman:
    """Count the human's verdicts and the pairs, row by row. Verdicts are `correct`, `incorrect` or "" (none)."""
    if len(human) != len(judge):
        raise ValueError(f"{len(human)} human verdicts for {len(judge)} judge verdicts")
    graded = sum(1 for h in human if h in (CORRECT, INCORRECT))
    counts = {"both_correct": 0, "both_incorrect": 0, "judge_only_correct": 0, "human_only_correct": 0}
    for h, j in zip(human, judge, strict=True):
        if h not in (CORRECT, INCORRECT) or j not in (CORRECT, INCORRECT):
            continue
        key = ("both_correct" if h == CORRECT else "judge_only_correct") if j == CORRECT else (
            "human_only_correct" if h == CORRECT else "both_incorrect")
        counts[key] += 1
    return JudgeHuman(graded=graded, human_correct=sum(1 for h in human if h == CORRECT),
                      compared=sum(counts.values()), **counts)


def run_metrics(stats: JudgeHuman) -> dict[str, float]:
    """The metrics a run carries after the human's verdicts on its rows are synced (nothing before one verdict)."""
    if not stats.graded:
        return {}
    low, high = stats.human_accuracy_ci
    metrics = {
        "human/graded": float(stats.graded),
        "human/accuracy": float(stats.human_accuracy or 0.0),
        "human/accuracy_ci_low": low,
        "human/accuracy_ci_high": high,
        "judge_human/compared": float(stats.compared),
        "judge_human/both_correct": float(stats.both_correct),
        "judge_human/both_incorrect": float(stats.both_incorrect),
        "judge_human/judge_only_correct": float(stats.judge_only_correct),
        "judge_human/human_only_correct": float(stats.human_only_correct),
    }
    if stats.compared:
        metrics["judge_human/agreement"] = float(stats.agreement or 0.0)
        metrics["judge_human/agreement_ci_low"], metrics["judge_human/agreement_ci_high"] = stats.agreement_ci
    if stats.kappa is not None and stats.kappa_ci is not None:
        metrics["judge_human/kappa"] = stats.kappa
        metrics["judge_human/kappa_ci_low"], metrics["judge_human/kappa_ci_high"] = stats.kappa_ci
    return metrics


def fmt_pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def describe(stats: JudgeHuman) -> str:
    """One line: agreement and kappa with their intervals, and the confusion counts."""
    if not stats.compared:
        return "no row graded by both"
    low, high = stats.agreement_ci
    text = f"agreement {fmt_pct(stats.agreement)} [{fmt_pct(low)}–{fmt_pct(high)}] on {stats.compared} rows"
    kappa_ci = stats.kappa_ci
    if stats.kappa is None or kappa_ci is None:
        text += ", kappa undefined (one label only)"
    else:
        text += f", kappa {stats.kappa:.2f} [{kappa_ci[0]:.2f}–{kappa_ci[1]:.2f}]"
    text += (f"; both right {stats.both_correct}, both wrong {stats.both_incorrect}, "
             f"judge-only right {stats.judge_only_correct}, human-only right {stats.human_only_correct}")
    return text


# -- every judge that judged one answers file


@dataclass
class JudgeReport:
    """One judge against the human on one answers file: from the file's own columns or from an earlier run."""

    judge: str
    run_id: str
    source: str  # "file" (its judge_verdict column) or "run" (that run's results artifact)
    stats: JudgeHuman

    @property
    def beyond_chance(self) -> bool | None:
        """True when kappa's 95% interval lies above 0; None when kappa is undefined."""
        ci = self.stats.kappa_ci
        return None if ci is None else ci[0] > 0

    def as_dict(self) -> dict[str, object]:
        return {"judge": self.judge, "run_id": self.run_id, "source": self.source,
                "beyond_chance": self.beyond_chance, **self.stats.as_dict()}


def _same_text(a: object, b: object) -> bool:
    return " ".join(str(a).split()) == " ".join(str(b).split())


def judge_reports(frame: pd.DataFrame, question_column: str, path: Path) -> tuple[list[JudgeReport], list[str]]:
    """Every judge that judged the answers in `frame` (read from the CSV at `path`), against its human verdicts.

    The file's own `judge_verdict` column is one judge. Earlier runs over the same file (tag `proctor.answers_file`,
    other judges or the same one before) are read from MLflow, their rows matched to the file's by row number and
    question. One report per judge (its latest run), the judge that agrees most first. Returns the reports and
    notes (e.g. MLflow could not be read).
    """
    from core.grading import JUDGE_COLUMN, VERDICT_COLUMN, normalise_verdict

    columns = list(frame.columns)
    human = [normalise_verdict(v) for v in frame[VERDICT_COLUMN]] if VERDICT_COLUMN in columns else []
    n = len(frame)
    human = human or [""] * n
    reports: list[JudgeReport] = []
    notes: list[str] = []
    seen_runs: set[str] = set()
    current_run = ""
    if JUDGE_COLUMN in columns:
        judges = [normalise_verdict(v) for v in frame[JUDGE_COLUMN]]
        name = next((str(v) for v in frame["judge"] if str(v).strip()), "") if "judge" in columns else ""
        current_run = next((str(v) for v in frame["run_id"] if str(v).strip()), "") if "run_id" in columns else ""
        reports.append(JudgeReport(name or "judge_verdict column", current_run, "file", judge_human(human, judges)))
        seen_runs.add(current_run)
    if current_run:
        try:
            for run_id, judge, verdicts in _earlier_runs(Path(path), frame, question_column, seen_runs):
                if any(r.judge == judge for r in reports):
                    continue  # a newer run of the same judge is already counted
                reports.append(JudgeReport(judge, run_id, "run", judge_human(human, verdicts)))
        except Exception as error:  # noqa: BLE001 - the file's own judge is still reported
            notes.append(f"earlier runs could not be read from MLflow: {str(error).splitlines()[0][:200]}")
    reports.sort(key=lambda r: (r.stats.kappa is None, -(r.stats.kappa or 0.0), -(r.stats.agreement or 0.0)))
    return reports, notes


def _earlier_runs(path: Path, frame: pd.DataFrame, question_column: str,
                  skip: set[str]) -> list[tuple[str, str, list[str]]]:
    """(run id, judge, verdicts aligned with the file's rows) for every run over this file, newest first."""
    from core.grading import normalise_verdict
    from core.run_answers import ANSWERS_TAG
    from core.runs import _client, _results_from_artifact, store_missing

    if store_missing():
        return []
    client = _client()
    resolved = str(path.resolve())
    quoted = resolved.replace("'", "\\'")
    found = []
    for experiment in client.search_experiments():
        runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{ANSWERS_TAG}` = '{quoted}'",
                                  order_by=["attributes.start_time DESC"], max_results=200)
        for run in runs:
            if run.info.run_id in skip:
                continue
            results = _results_from_artifact(client, run.info.run_id)
            if results is None or "judge_verdict" not in results.columns:
                continue
            questions = frame[question_column].tolist()
            verdicts = [""] * len(questions)
            for record in results.fillna("").astype(str).to_dict(orient="records"):
                try:
                    index = int(float(record.get("row", ""))) - 1
                except ValueError:
                    continue
                if 0 <= index < len(questions) and _same_text(record.get("question", ""), questions[index]):
                    verdicts[index] = normalise_verdict(record.get("judge_verdict", ""))
            judge = run.data.params.get("judge") or run.data.tags.get("proctor.judge", "") or "unknown judge"
            found.append((run.info.run_id, judge, verdicts))
    return found
