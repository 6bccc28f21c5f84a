"""core.stats against reference values: published Wilson intervals, exact McNemar p-values worked by hand, the
paired interval recomputed from its definition, and the edges (b + c = 0, all-equal runs, n = 1, n = 0)."""

from __future__ import annotations

import math

import pytest

from core.stats import (
    latency_sentence,
    paired_means,
    paired_shares,
    questions_needed,
    share,
    shares_sentence,
    wilson_interval,
)


def table(both: int, a_only: int, b_only: int, neither: int) -> tuple[list[bool], list[bool]]:
    """Per-question right/wrong of runs A and B from the four cells of the paired 2x2 table."""
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return a, b


# -- one share


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score without correction)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=5e-5)
    got = share(k, n)
    assert (got.value, got.low, got.high) == pytest.approx((k / n, low, high), abs=5e-5)


def test_share_edges() -> None:
    empty = share(0, 0)
    assert (empty.value, empty.low, empty.high) == (None, None, None)
    assert empty.to_dict() == {"k": 0, "n": 0, "share": None, "ci_low": None, "ci_high": None}
    one_right, one_wrong = share(1, 1), share(0, 1)
    # n = 1: the interval is wide (Wilson at z = 1.96: 1/(1 + z^2) = 0.2065) and still inside [0, 1].
    assert (one_right.low, one_right.high) == pytest.approx((1 / (1 + 1.959963984540054 ** 2), 1.0))
    assert (one_wrong.low, one_wrong.high) == pytest.approx((0.0, 1 - 1 / (1 + 1.959963984540054 ** 2)))
    assert wilson_interval(15, 30, 0.0) == (0.5, 0.5)  # grading's finite-population correction at a full census
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


# -- paired right/wrong


def test_paired_worked_example_from_miller_2024() -> None:
    # statistics-facts.md: n = 300, b = 14, c = 26 -> +4.0 points (95% CI -0.1 to +8.1), exact p = 0.081.
    a, b = table(100, 14, 26, 160)
    p = paired_shares(a, b)
    assert (p.n, p.a_only, p.b_only) == (300, 14, 26)
    assert p.diff == pytest.approx(0.04)
    assert (round(p.ci_low * 100, 1), round(p.ci_high * 100, 1)) == (-0.1, 8.1)
    # Exact McNemar: two-sided binomial on the 40 discordant pairs, p = 2 * P(X <= 14), X ~ Bin(40, 1/2).
    exact = 2 * sum(math.comb(40, i) for i in range(15)) / 2 ** 40
    assert p.p_value == pytest.approx(exact, rel=1e-9)
    assert round(p.p_value, 3) == 0.081
    assert not p.significant and p.better == ""


def test_paired_interval_is_the_t_interval_of_the_differences() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = table(30, 1, 10, 7)
    p = paired_shares(a, b)
    d = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    n, mean = len(d), sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = scipy_stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert (p.ci_low, p.ci_high) == pytest.approx((mean - half, mean + half), rel=1e-9)
    # MDE at 80% power: (z_0.975 + z_0.80) * sd / sqrt(n), 2.8016 * sd / sqrt(n).
    assert p.mde == pytest.approx((1.959963984540054 + 0.8416212335729143) * sd / math.sqrt(n), rel=1e-9)
    assert p.p_value == pytest.approx(2 * (1 + 11) / 2 ** 11)  # exact McNemar, b = 1, c = 10
    assert p.significant and p.better == "b"


def test_shipped_benchmark_case_is_not_significant() -> None:
    # nano vs mini on the shipped 48 questions: b = 0, c = 3, exact p = 2 * (1/2)^3 = 0.25.
    a, b = table(40, 0, 3, 5)
    p = paired_shares(a, b)
    assert p.p_value == pytest.approx(0.25)
    assert p.diff == pytest.approx(3 / 48)
    sentence = shares_sentence(p)
    assert sentence.startswith("B is ahead by 6.2 points (95% CI -0.9 to +13.4, p = 0.25): "
                               "not a detectable difference at n = 48; about ")
    assert "questions would detect 6.2 points." in sentence
    assert "better" not in sentence
    needed = questions_needed(p.sd, p.diff)
    assert needed is not None and needed > 48
    assert f"about {needed:,} questions" in sentence


def test_b_plus_c_zero_and_all_equal_runs() -> None:
    for a, b in (table(20, 0, 0, 8), table(10, 0, 0, 0), table(0, 0, 0, 10)):
        p = paired_shares(a, b)
        assert (p.a_only, p.b_only, p.diff, p.p_value) == (0, 0, 0.0, 1.0)
        assert (p.ci_low, p.ci_high, p.mde) == (None, None, None)  # no spread: nothing to estimate it from
        assert not p.significant and p.better == ""
        assert shares_sentence(p) == (f"A and B are level: the same result on all {p.n} question(s) (p = 1), so "
                                      f"no difference shows at n = {p.n}.")


def test_n_one_and_n_zero() -> None:
    p = paired_shares([False], [True])
    assert (p.n, p.b_only, p.diff, p.p_value, p.ci_low, p.mde) == (1, 1, 1.0, 1.0, None, None)
    assert shares_sentence(p) == ("B is ahead by 100.0 points (p = 1, too few questions for an interval): "
                                  "not a detectable difference at n = 1.")
    empty = paired_shares([], [])
    assert empty.n == 0 and empty.diff is None and empty.p_value is None
    assert shares_sentence(empty) == "No question was answered by both runs: nothing to compare."
    with pytest.raises(ValueError):
        paired_shares([True], [])


def test_sentence_says_better_only_when_significant() -> None:
    ahead = paired_shares(*table(50, 1, 15, 34))
    assert ahead.p_value < 0.05
    assert shares_sentence(ahead).endswith("B is better, a detectable difference at n = 100.")
    behind = paired_shares(*table(50, 15, 1, 34))
    assert shares_sentence(behind).startswith("B is behind by 14.0 points (95% CI -")
    assert shares_sentence(behind).endswith("A is better, a detectable difference at n = 100.")
    # Level, but with questions that differ both ways: an interval around 0 and no winner.
    level = paired_shares(*table(50, 4, 4, 42))
    assert level.diff == 0 and level.p_value == 1.0 and level.better == ""
    assert "A and B are level (0.0 points" in shares_sentence(level)
    assert "detect" in shares_sentence(level) and "better" not in shares_sentence(level)
    assert "on exact match" in shares_sentence(ahead, "exact match")
    assert ahead.to_dict()["sentence"] == shares_sentence(ahead)
    assert set(ahead.to_dict()) == {"n", "a_only", "b_only", "both", "neither", "diff", "ci_low", "ci_high",
                                    "p_value", "mde", "significant", "sentence"}


# -- paired latencies


def test_paired_latency_against_scipy_ttest_rel() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    a = [0.12, 0.15, 0.11, 0.20, 0.13, 0.14, 0.18, 0.16]
    b = [0.10, 0.13, 0.12, 0.17, 0.11, 0.12, 0.15, 0.15]
    p = paired_means(a, b)
    ref = scipy_stats.ttest_rel(b, a)
    ci = ref.confidence_interval(0.95)
    assert p.diff == pytest.approx(sum(b) / 8 - sum(a) / 8)
    assert (p.ci_low, p.ci_high, p.p_value) == pytest.approx((ci.low, ci.high, ref.pvalue))
    assert p.significant and p.better == "b"  # lower is better for latency
    # Below 0.1 s, in milliseconds: never "0.000 s".
    assert latency_sentence(p).startswith("B is quicker by 17.5 ms per question "
                                          "(95% CI -28.2 to -6.8 ms, p = 0.0062)")
    assert latency_sentence(p).endswith("B is faster, a detectable difference at n = 8.")


def test_paired_latency_edges() -> None:
    same = paired_means([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    assert (same.diff, same.p_value, same.ci_low, same.better) == (0.0, 1.0, None, "")
    assert latency_sentence(same) == "A and B took the same time on all 3 question(s)."
    shifted = paired_means([0.1, 0.2], [0.2, 0.3])  # float rounding must not pass for spread
    assert shifted.ci_low is None and shifted.p_value is None and shifted.better == ""
    assert "no spread" in latency_sentence(shifted)
    one = paired_means([0.131], [0.129])
    assert one.n == 1 and one.p_value is None and one.ci_low is None
    assert latency_sentence(one) == ("B is quicker by 2.0 ms per question (p undefined, too few questions for an "
                                     "interval): not a detectable difference at n = 1.")
    slower = paired_means([0.2, 0.3, 0.25, 0.22], [0.31, 0.39, 0.36, 0.33])
    assert latency_sentence(slower).startswith("B is slower by 0.105 s per question (95% CI +0.")
    assert latency_sentence(slower).endswith("A is faster, a detectable difference at n = 4.")
    # A mean difference that is float noise reads as level, with its interval.
    noise = paired_means([0.213, 0.2, 0.25, 0.22], [0.212, 0.21, 0.24, 0.221])
    assert latency_sentence(noise).startswith("A and B take the same time on average (95% CI -13.1 to +13.1 ms")
    noisy = paired_means([0.131, 0.140, 0.120, 0.150], [0.129, 0.145, 0.118, 0.149])
    assert not noisy.significant and "not a detectable difference at n = 4" in latency_sentence(noisy)
    assert "faster" not in latency_sentence(noisy)
    assert paired_means([], []).to_dict()["sentence"] == "No question has a latency in both runs: nothing to compare."


# -- the standard-library computations give scipy's numbers (scipy is imported here, in the test, only)


def _close(got: float | None, want: float, rel: float = 1e-9) -> bool:
    return got is not None and abs(got - want) <= max(rel * abs(want), 1e-12)


def test_wilson_equals_scipy_on_a_grid() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    cases = [(k, n) for n in range(1, 41) for k in range(n + 1)]
    cases += [(k, n) for n in (97, 250, 1000, 4321, 100_000) for k in (0, 1, 2, n // 7, n // 2, n - 3, n - 1, n)]
    for k, n in cases:
        ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        low, high = wilson_interval(k, n)
        assert _close(low, max(0.0, ci.low) if k else 0.0) and _close(high, min(1.0, ci.high) if k < n else 1.0), \
            (k, n, (low, high), ci)
    # Another z (grading's finite-population correction): scipy takes it as the level 2 Phi(z) - 1.
    for z in (0.3, 1.0, 1.645, 2.5758, 3.5, 5.0):
        level = float(2 * scipy_stats.norm.cdf(z) - 1)
        for k, n in ((0, 5), (3, 7), (40, 50), (123, 400)):
            ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
            low, high = wilson_interval(k, n, z)
            assert _close(low, max(0.0, ci.low) if k else 0.0) and _close(high, min(1.0, ci.high)), (z, k, n)


def test_exact_mcnemar_equals_scipy_binomtest_on_a_grid() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    from core.stats import binomial_p_half

    assert binomial_p_half(0, 0) == 1.0  # nothing differs (scipy refuses n = 0)
    cases = [(k, n) for n in range(1, 41) for k in range(n + 1)]
    # Past the exact integer sum (n > 5000) the incomplete beta function takes over.
    cases += [(k, n) for n in (499, 4999, 5000, 5001, 12_345, 99_999)
              for k in (0, 1, n // 10, n // 2 - 60, n // 2 - 1, n // 2, (n + 1) // 2, n - 2, n)]
    for k, n in cases:
        want = float(scipy_stats.binomtest(k, n, 0.5).pvalue)
        assert _close(binomial_p_half(k, n), want), (k, n, binomial_p_half(k, n), want)
    with pytest.raises(ValueError):
        binomial_p_half(3, 2)


def test_paired_shares_equal_scipy_on_a_grid() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    z_power = float(scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8))
    for both, a_only, b_only, neither in [(0, 1, 1, 0), (1, 0, 2, 0), (40, 0, 3, 5), (100, 14, 26, 160),
                                          (30, 1, 10, 7), (5, 9, 2, 1), (700, 120, 95, 85), (0, 0, 3, 0),
                                          (2000, 310, 260, 1430)]:
        a, b = table(both, a_only, b_only, neither)
        got = paired_shares(a, b)
        xs, ys = [float(x) for x in a], [float(y) for y in b]
        want_p = float(scipy_stats.binomtest(min(a_only, b_only), a_only + b_only, 0.5).pvalue)
        assert _close(got.p_value, want_p), (both, a_only, b_only, neither)
        d = [y - x for x, y in zip(xs, ys, strict=True)]
        if len(set(d)) > 1:
            ci = scipy_stats.ttest_rel(ys, xs).confidence_interval(0.95)
            assert _close(got.ci_low, float(ci.low)) and _close(got.ci_high, float(ci.high))
            sd = float(scipy_stats.tstd(d))
            assert _close(got.mde, z_power * sd / math.sqrt(len(d)))


def test_paired_means_equal_scipy_ttest_rel_on_a_grid() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    import random

    generator = random.Random(14)
    for n in (2, 3, 4, 5, 8, 13, 30, 100, 1000, 5000):
        for shift in (0.0, 0.003, 0.05, -0.2):
            a = [generator.uniform(0.05, 2.0) for _ in range(n)]
            b = [x + shift + generator.gauss(0, 0.05) for x in a]
            got = paired_means(a, b)
            ref = scipy_stats.ttest_rel(b, a)
            ci = ref.confidence_interval(0.95)
            assert _close(got.p_value, float(ref.pvalue)), (n, shift, got.p_value, ref.pvalue)
            assert _close(got.ci_low, float(ci.low)) and _close(got.ci_high, float(ci.high)), (n, shift)


def test_t_quantile_and_tail_equal_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    from core.stats import _t_quantile, _t_two_sided

    for df in [*range(1, 61), 99, 500, 4999, 100_000]:
        assert _close(_t_quantile(0.975, df), float(scipy_stats.t.ppf(0.975, df))), df
        for t in (0.01, 0.7, 1.96, 3.0, 8.0, 30.0):
            assert _close(_t_two_sided(t, df), float(2 * scipy_stats.t.sf(t, df)), rel=1e-8), (df, t)


def test_no_scipy_import_for_any_statistic() -> None:
    # Every statistic of a comparison, a share and grading, computed in a fresh interpreter: scipy stays unloaded.
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\n"
            "from core.stats import paired_means, paired_shares, share, wilson_interval, questions_needed\n"
            "p = paired_shares([True, False, True, False, True], [True, True, True, True, False])\n"
            "m = paired_means([0.1, 0.3, 0.2, 0.5], [0.2, 0.25, 0.3, 0.1])\n"
            "share(17, 20); wilson_interval(3, 9, 1.2); questions_needed(p.sd, 0.05)\n"
            "assert p.p_value is not None and m.p_value is not None and m.ci_low is not None\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'numpy', 'pandas', 'mlflow')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
