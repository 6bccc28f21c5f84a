"""How sure a number is: the statistics behind every share and every comparison Proctor shows.

One small module used by evaluate, runs, compare and grading alike. Every formula is the one scipy implements, and
a test checks each against scipy on a grid of inputs (to 1e-9); they are computed here with the standard library
because importing scipy.stats takes 1-3 s, more than the whole of `proctor compare` may take:

- A share (k right out of n): the 95% **Wilson** score interval, the formula of `scipy.stats.binomtest(k, n)
  .proportion_ci(method="wilson")` (Newcombe 1998) with the normal quantile from `statistics.NormalDist`. Wilson's
  interval stays inside [0, 1] and keeps its coverage for small n and for shares near 0 or 1, where the textbook
  normal ("Wald") interval collapses to zero width.
- Two runs on the same questions are **paired**: their per-question results are correlated, so the difference is
  measured on the per-question differences d_i = B_i - A_i, which is much tighter than comparing two intervals.
  - Interval of the mean difference: Student's t on the d_i, as `scipy.stats.ttest_rel(b, a)
    .confidence_interval(0.95)` (the paired-difference interval of Miller 2024, with t instead of 1.96: a little
    wider at small n). The t quantile and tail come from the regularized incomplete beta function (`_betainc`).
  - Right/wrong scores: the exact **McNemar** test, the two-sided binomial test of `scipy.stats.binomtest(min(b, c),
    b + c, 0.5).pvalue`, where b and c count the questions only A and only B got right (p = 1 when b + c = 0):
    2 P(X <= min(b, c)) for X ~ Bin(b + c, 1/2), summed exactly in integers. Exact, because b + c is small (3 on
    the shipped 48-question benchmark), where the chi-square version is wrong.
  - Latencies: the paired t-test, as `scipy.stats.ttest_rel(b, a).pvalue`.
  - Power: the smallest difference this n detects at 5% (two-sided) with 80% power, (z_0.975 + z_0.8) * sd(d) /
    sqrt(n), with normal quantiles; and the n that would detect a given difference.
- Agreement and Cohen's kappa between two raters (the judge and a human).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

Z_95 = 1.959963984540054  # the two-sided 95% normal quantile, scipy.stats.norm.ppf(0.975)
ALPHA = 0.05  # a difference is called significant (and one side "better") only below this p-value
POWER = 0.80  # the power the minimal detectable difference (MDE) is computed for
CONFIDENCE = 0.95
_NORMAL = NormalDist()
# Up to this many discordant pairs the McNemar p-value is summed exactly in integers (milliseconds); up to the next
# limit, from the incomplete beta function (the binomial tail's closed form, within 1e-9 of scipy); beyond it the
# log-gamma terms lose digits, and scipy itself is imported (seconds, next to reading 100,000 rows).
_EXACT_BINOMIAL_UP_TO = 5000
_BETA_BINOMIAL_UP_TO = 100_000


# ---------------------------------------------------------------- the distributions behind the tests


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz), to double precision."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) <= 3e-16:
            break
    return h


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """I_x(a, b), the regularized incomplete beta function (`scipy.special.betainc`); `y` is 1 - x, passed apart
    so that an x near 1 keeps its precision."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, y) / b


def _t_two_sided(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom (`2 * scipy.stats.t.sf(abs(t), df)`)."""
    t2 = t * t
    return min(1.0, _betainc(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2)))


@lru_cache(maxsize=256)
def _t_quantile(probability: float, df: int) -> float:
    """The Student's t quantile for `probability` > 0.5 (`scipy.stats.t.ppf`), by Newton's method on the tail.

    It starts at the normal quantile, which lies below the t quantile; the tail is convex there, so every step stays
    below the root and the iterates climb to it.
    """
    tail = 2.0 * (1.0 - probability)
    log_scale = math.lgamma((df + 1) / 2.0) - math.lgamma(df / 2.0) - 0.5 * math.log(df * math.pi)
    t = _NORMAL.inv_cdf(probability)
    for _ in range(200):
        density = math.exp(log_scale - (df + 1) / 2.0 * math.log1p(t * t / df))
        step = (_t_two_sided(t, df) - tail) / (2.0 * density)
        t += step
        if abs(step) <= 1e-15 * t:
            break
    return t


def binomial_p_half(k: int, n: int) -> float:
    """The two-sided exact binomial test of k successes in n trials at p = 1/2: `scipy.stats.binomtest(k, n, 0.5)
    .pvalue`. The distribution is symmetric, so it is 2 P(X <= min(k, n - k)), capped at 1."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    k = min(k, n - k)
    if 2 * k == n:
        return 1.0
    if n <= _EXACT_BINOMIAL_UP_TO:
        term = total = 1
        for j in range(1, k + 1):
            term = term * (n - j + 1) // j  # C(n, j), exact
            total += term
        return min(1.0, 2 * total / 2**n)
    if n <= _BETA_BINOMIAL_UP_TO:
        return min(1.0, 2.0 * _betainc(n - k, k + 1.0, 0.5, 0.5))
    from scipy.stats import binomtest

    return float(binomtest(k, n, 0.5).pvalue)


# ---------------------------------------------------------------- one share


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for k successes out of n; 95% for the default z. n == 0 gives (0.0, 1.0).

    `z` other than 1.96 serves grading's finite-population correction (a narrower interval for a sample of a small
    file). z == 0 (the whole file graded) gives (k/n, k/n).
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    if z <= 0:
        return k / n, k / n
    if z != Z_95:
        # As scipy: z is turned into a confidence level and back (a level that rounds to 1 is everything).
        level = 2 * _NORMAL.cdf(z) - 1
        if level >= 1.0:
            return 0.0, 1.0
        z = _NORMAL.inv_cdf(0.5 + 0.5 * level)
    # Newcombe (1998), method 3, as scipy's `_binom_wilson_conf_int` writes it.
    p = k / n
    denom = 2 * (n + z**2)
    center = (2 * n * p + z**2) / denom
    delta = z / denom * math.sqrt(4 * n * p * (1 - p) + z**2)
    # The bounds are exactly 0 at k == 0 and 1 at k == n; keep rounding noise from saying otherwise.
    low = 0.0 if k == 0 else max(0.0, center - delta)
    high = 1.0 if k == n else min(1.0, center + delta)
    return low, high


@dataclass(frozen=True)
class Share:
    """k right out of n, with its 95% Wilson interval. `value`, `low`, `high` are None when n == 0."""

    k: int
    n: int
    value: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "share": self.value, "ci_low": self.low, "ci_high": self.high}


def share(k: int, n: int) -> Share:
    """k right out of n with its 95% Wilson interval (all None when n == 0: nothing was measured)."""
    if n == 0:
        return Share(k, n, None, None, None)
    low, high = wilson_interval(k, n)
    return Share(k, n, k / n, low, high)


def share_from_mean(mean: float, n: int) -> Share:
    """The interval of a share logged only as a mean over n rows (k = mean * n, rounded)."""
    k = min(n, max(0, round(mean * n)))
    return share(k, n)


# ---------------------------------------------------------------- two raters


def agreement(a: Sequence[str], b: Sequence[str]) -> float | None:
    """The share of positions where the two raters gave the same label; None for empty input."""
    if len(a) != len(b):
        raise ValueError(f"the raters labelled {len(a)} and {len(b)} items")
    if not a:
        return None
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def cohens_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa between two raters' labels of the same items: (observed - chance) / (1 - chance).

    The definition itself, not a library call: scikit-learn's `cohen_kappa_score` gives the same value (a test
    checks it) but costs a second to import on the grading screen's thread. None when it is undefined: no items,
    or both raters gave every item the same single label (chance agreement 1).
    """
    observed = agreement(a, b)
    if observed is None:
        return None
    n = len(a)
    labels = set(a) | set(b)
    expected = sum((list(a).count(label) / n) * (list(b).count(label) / n) for label in labels)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


# ---------------------------------------------------------------- two runs on the same questions


def _z_power() -> float:
    return _NORMAL.inv_cdf(1 - ALPHA / 2) + _NORMAL.inv_cdf(POWER)


def _all_equal(values: Sequence[float]) -> bool:
    # Latencies differing only by float rounding (0.3 - 0.2 vs 0.2 - 0.1) count as equal: a t-test would divide by
    # a rounding-noise variance.
    return max(values) - min(values) <= 1e-12 * max(1.0, max(abs(v) for v in values))


def _paired_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float | None, float | None]:
    """95% interval of mean(b - a) from the paired t-test (`scipy.stats.ttest_rel(b, a).confidence_interval()`);
    None when it is undefined (n < 2, or every d_i equal)."""
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    if len(diffs) < 2 or _all_equal(diffs):
        return None, None
    mean, se = _mean_se(diffs)
    half = _t_quantile(0.5 + CONFIDENCE / 2, len(diffs) - 1) * se
    return mean - half, mean + half


def _mean_se(diffs: Sequence[float]) -> tuple[float, float]:
    """The mean of the d_i and its standard error, sd / sqrt(n) (n >= 2, not all equal)."""
    n = len(diffs)
    mean = math.fsum(diffs) / n
    return mean, math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)) / math.sqrt(n)


def _sd(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    if _all_equal(values):
        return 0.0
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def minimal_detectable(sd: float | None, n: int) -> float | None:
    """The smallest true difference n paired questions detect at 5% (two-sided) with 80% power; None if unknown."""
    if sd is None or sd <= 0 or n < 2:
        return None
    return _z_power() * sd / math.sqrt(n)


def questions_needed(sd: float | None, difference: float) -> int | None:
    """About how many paired questions would detect `difference` (same sd of d_i) at 5% with 80% power."""
    if sd is None or sd <= 0 or not difference:
        return None
    return math.ceil((_z_power() * sd / abs(difference)) ** 2)


@dataclass(frozen=True)
class PairedShares:
    """Right/wrong on the same n questions: `a_only` A right and B wrong (b), `b_only` the reverse (c).

    `diff` is B minus A as a share; `ci_low`/`ci_high` its 95% paired interval; `p_value` the exact McNemar test;
    `mde` the smallest difference (a share) this n would detect with 80% power; `sd` the sd of the d_i.
    """

    n: int
    a_only: int
    b_only: int
    both: int
    neither: int
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    mde: float | None
    sd: float | None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    @property
    def better(self) -> str:
        """"a" or "b" when the difference is significant at 5%, else "" (no side is called better)."""
        if not self.significant or not self.diff:
            return ""
        return "b" if self.diff > 0 else "a"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("sd")
        data["significant"] = self.significant
        data["sentence"] = shares_sentence(self)
        return data


def paired_shares(a: Sequence[bool], b: Sequence[bool]) -> PairedShares:
    """Compare two runs' right/wrong on the same questions (a[i] and b[i] are question i)."""
    if len(a) != len(b):
        raise ValueError(f"paired results need the same questions: {len(a)} vs {len(b)}")
    n = len(a)
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    if n == 0:
        return PairedShares(0, 0, 0, 0, 0, None, None, None, None, None, None)
    xs, ys = [float(bool(x)) for x in a], [float(bool(y)) for y in b]
    low, high = _paired_interval(xs, ys)
    if a_only + b_only == 0:
        p_value = 1.0  # no question differs: nothing speaks for either side
    else:
        p_value = binomial_p_half(min(a_only, b_only), a_only + b_only)
    sd = _sd([y - x for x, y in zip(xs, ys, strict=True)])
    return PairedShares(n, a_only, b_only, both, n - both - a_only - b_only, (b_only - a_only) / n, low, high,
                        min(1.0, p_value), minimal_detectable(sd, n), sd)


@dataclass(frozen=True)
class PairedMeans:
    """A per-question number (latency, seconds) on the same n questions: mean of B - A, its 95% interval, the
    paired t-test's p-value, the MDE with 80% power. `lower_is_better` says which way is good."""

    n: int
    mean_a: float | None
    mean_b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    mde: float | None
    sd: float | None
    lower_is_better: bool = True

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    @property
    def better(self) -> str:
        if not self.significant or not self.diff:
            return ""
        return ("a" if self.diff > 0 else "b") if self.lower_is_better else ("b" if self.diff > 0 else "a")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("sd")
        data.pop("lower_is_better")
        data["significant"] = self.significant
        data["sentence"] = latency_sentence(self)
        return data


def paired_means(a: Sequence[float], b: Sequence[float], *, lower_is_better: bool = True) -> PairedMeans:
    """Compare a per-question number of two runs on the same questions (a[i] and b[i] are question i)."""
    if len(a) != len(b):
        raise ValueError(f"paired results need the same questions: {len(a)} vs {len(b)}")
    n = len(a)
    if n == 0:
        return PairedMeans(0, None, None, None, None, None, None, None, None, lower_is_better)
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    mean_a, mean_b = math.fsum(a) / n, math.fsum(b) / n
    low, high = _paired_interval(a, b)
    p_value: float | None
    if n < 2:
        p_value = None
    elif _all_equal(diffs):
        # Identical values: no difference (p = 1); a constant shift: no spread, so the test is undefined.
        p_value = 1.0 if abs(diffs[0]) <= 1e-12 else None
    else:
        mean, se = _mean_se(diffs)
        p_value = _t_two_sided(mean / se, n - 1)  # scipy.stats.ttest_rel(b, a).pvalue
    sd = _sd(diffs)
    return PairedMeans(n, mean_a, mean_b, math.fsum(diffs) / n, low, high, p_value, minimal_detectable(sd, n), sd,
                       lower_is_better)


# ---------------------------------------------------------------- plain sentences


def format_p(p: float | None) -> str:
    """`p = 0.25`, `p = 0.081`, `p < 0.001`; `p undefined` when there is none."""
    if p is None:
        return "p undefined"
    if p < 0.001:
        return "p < 0.001"
    if p >= 0.995:
        return "p = 1"
    return f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def _points(share_value: float) -> str:
    return f"{abs(share_value) * 100:.1f}"


def _signed_points(share_value: float) -> str:
    text = f"{share_value * 100:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


def shares_sentence(p: PairedShares, what: str = "") -> str:
    """One plain sentence for a paired right/wrong comparison, e.g. "B is ahead by 6.2 points (95% CI -0.9 to
    +13.4, p = 0.25): not a detectable difference at n = 48; about 277 questions would detect 6.2 points."

    "better" is said only when the exact McNemar test is significant at 5%. `what` names the measure ("exact
    match"), for sentences about a scorer other than accuracy.
    """
    on = f" on {what}" if what else ""
    if p.n == 0:
        return f"No question was answered by both runs: nothing to compare{on}."
    if p.a_only + p.b_only == 0:
        return (f"A and B are level{on}: the same result on all {p.n} question(s) (p = 1), so no difference "
                f"shows at n = {p.n}.")
    diff = p.diff or 0.0
    if diff > 0:
        lead = f"B is ahead{on} by {_points(diff)} points"
    elif diff < 0:
        lead = f"B is behind{on} by {_points(diff)} points"
    else:
        lead = f"A and B are level{on} (0.0 points; {p.a_only} question(s) only A got right, as many only B)"
    if p.ci_low is None or p.ci_high is None:
        interval = f"{format_p(p.p_value)}, too few questions for an interval"
    else:
        interval = f"95% CI {_signed_points(p.ci_low)} to {_signed_points(p.ci_high)}, {format_p(p.p_value)}"
    if p.significant:
        winner = "B" if diff > 0 else "A"
        return f"{lead} ({interval}): {winner} is better, a detectable difference at n = {p.n}."
    tail = f"not a detectable difference at n = {p.n}"
    needed = questions_needed(p.sd, diff)
    if needed is not None and needed > p.n:
        tail += f"; about {needed:,} questions would detect {_points(diff)} points"
    return f"{lead} ({interval}): {tail}."


def _seconds(value: float) -> str:
    """A duration for a sentence: `0.213 s`, or in milliseconds below 0.1 s (`4.2 ms`) so that it never reads 0."""
    value = abs(value)
    return f"{value:.3f} s" if value >= 0.1 else f"{value * 1000:.1f} ms"


def latency_sentence(p: PairedMeans) -> str:
    """One plain sentence for paired per-question latencies; "faster" as a verdict only when significant at 5%."""
    if p.n == 0 or p.diff is None:
        return "No question has a latency in both runs: nothing to compare."
    diff = p.diff
    if diff == 0 and (p.sd or 0) == 0:
        return f"A and B took the same time on all {p.n} question(s)."
    if _seconds(diff) == "0.0 ms":  # below what is shown: level, whatever the float noise's sign
        lead = "A and B take the same time on average"
    else:
        lead = (f"B is slower by {_seconds(diff)} per question" if diff > 0 else
                f"B is quicker by {_seconds(diff)} per question")
    if p.n >= 2 and not p.sd:
        return f"{lead}, the same on every one of the {p.n} questions (no spread: no interval or test)."
    if p.ci_low is None or p.ci_high is None:
        interval = f"{format_p(p.p_value)}, too few questions for an interval"
    else:
        unit, scale = ("s", 1.0) if max(abs(p.ci_low), abs(p.ci_high)) >= 0.1 else ("ms", 1000.0)
        digits = 3 if unit == "s" else 1
        interval = (f"95% CI {p.ci_low * scale:+.{digits}f} to {p.ci_high * scale:+.{digits}f} {unit}, "
                    f"{format_p(p.p_value)}")
    if p.significant:
        return f"{lead} ({interval}): {'A' if p.better == 'a' else 'B'} is faster, a detectable difference at " \
               f"n = {p.n}."
    return f"{lead} ({interval}): not a detectable difference at n = {p.n}."


# ---------------------------------------------------------------- which logged metrics are shares


_SHARE_METRICS = ("accuracy", "human_accuracy", "judge_human_agreement")


def is_share_metric(name: str) -> bool:
    """A metric that is a share of rows (gets a Wilson interval): accuracy, `<scorer>/mean`, human accuracy,
    judge-human agreement."""
    return name in _SHARE_METRICS or (name.endswith("/mean") and not is_interval_metric(name))


def interval_metric_names(name: str) -> tuple[str, str]:
    """The metric names a share's interval is logged under: `accuracy` -> accuracy_ci_low / accuracy_ci_high,
    `correctness/mean` -> correctness/ci_low / correctness/ci_high."""
    if name.endswith("/mean"):
        stem = name[: -len("/mean")]
        return f"{stem}/ci_low", f"{stem}/ci_high"
    return f"{name}_ci_low", f"{name}_ci_high"


def is_interval_metric(name: str) -> bool:
    """True for the bounds `interval_metric_names` makes (they are shown beside their share, not as metrics)."""
    return name.endswith(("ci_low", "ci_high"))
