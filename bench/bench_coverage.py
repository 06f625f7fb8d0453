"""Coverage and width of the win-rate intervals on simulated crossed (question x annotator) studies.

    OMP_NUM_THREADS=1 python bench/bench_coverage.py [--quick] [--studies 2000] [--rounds 400]
                                                     [--only main,null] [--seed 0]
                                                     [--ties-half-only]

Each study: 78 questions x 15 annotators (or each annotator on 26 random questions),
latent logit mu + u_q + v_a with u_q ~ N(0, sd_q²), v_a ~ N(0, sd_a²); a vote is a tie with
probability 0.15, else a win with probability sigmoid(logit). The true value is the
population win rate, ties as half: 0.15/2 + 0.85 · E[sigmoid(mu + u + v)] (the ratio
E[num] / E[den]; every vote is rated), by Gauss-Hermite quadrature over u + v ~ N(0, sd_q² +
sd_a²), checked by Monte Carlo; mu is solved for the scenario's target rate. The decisive
rate W / (W + L) has the true value E[sigmoid(mu + u + v)]. Each study gets every candidate
interval (the bootstrap ones with ``--rounds`` rounds, fewer than the report's); coverage is
the share of studies whose interval holds the true value, with its binomial Monte-Carlo
standard error. ``--quick``: 300 studies, 200 rounds.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import load_average, table  # noqa: E402

from sbs.analysis.stats.verdict import (  # noqa: E402
    DEFAULT_INTERVAL,
    bootstrap_win_rate,
    logit_wald_interval,
    percentile_interval,
    rescaled_percentile_interval,
    two_way_bootstrap_ratio,
    two_way_variance,
    wald_interval,
)

TIE = 0.15
BLOCK = 2000  # studies simulated at once
LEVEL = 0.95
Interval = tuple[float | None, float | None]


@dataclass(frozen=True)
class Scenario:
    name: str
    sd_q: float
    sd_a: float
    target: float  # true win rate, ties as half
    n_q: int = 78
    n_a: int = 15
    per_annotator: int | None = None  # questions judged by each annotator (None: all)


SCENARIOS = [
    Scenario("main", 1.0, 0.3, 0.60),
    Scenario("null", 1.0, 0.3, 0.50),
    Scenario("annotator-heavy", 0.3, 1.0, 0.60),
    Scenario("lopsided", 1.0, 0.3, 0.85),
    Scenario("main, sparse (26 of 78 per annotator)", 1.0, 0.3, 0.60, per_annotator=26),
    Scenario("annotator-heavy, sparse", 0.3, 1.0, 0.60, per_annotator=26),
]


def mean_sigmoid(mu: float, sd: float, nodes: int = 200) -> float:
    """E[sigmoid(mu + sd·Z)], Z ~ N(0, 1), by Gauss-Hermite quadrature."""
    x, w = np.polynomial.hermite.hermgauss(nodes)
    return float(np.dot(w, expit(mu + math.sqrt(2.0) * sd * x)) / math.sqrt(math.pi))


def ties_half_rate(mu: float, sd: float) -> float:
    return TIE / 2 + (1 - TIE) * mean_sigmoid(mu, sd)


def solve_mu(target: float, sd: float) -> float:
    if target == 0.5:
        return 0.0
    return float(brentq(lambda m: ties_half_rate(m, sd) - target, -10.0, 10.0, xtol=1e-12))


def monte_carlo_rate(mu: float, s: Scenario, draws: int, rng: np.random.Generator) -> float:
    u = rng.normal(0.0, s.sd_q, draws)
    v = rng.normal(0.0, s.sd_a, draws)
    return TIE / 2 + (1 - TIE) * float(expit(mu + u + v).mean())


def simulate(
    s: Scenario, mu: float, studies: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(ties-half score, is_tie, present) arrays of shape (studies, n_q, n_a)."""
    u = rng.normal(0.0, s.sd_q, (studies, s.n_q, 1))
    v = rng.normal(0.0, s.sd_a, (studies, 1, s.n_a))
    tie = rng.random((studies, s.n_q, s.n_a)) < TIE
    win = rng.random((studies, s.n_q, s.n_a)) < expit(mu + u + v)
    score = np.where(tie, 0.5, win.astype(float))
    if s.per_annotator is None:
        present = np.ones_like(tie)
    else:  # each annotator judges per_annotator random questions
        ranks = rng.random((studies, s.n_a, s.n_q)).argsort(axis=2).argsort(axis=2)
        present = (ranks < s.per_annotator).transpose(0, 2, 1)
    return score, tie, present


REPORTED = "CGM logit Wald, t(Satterthwaite)"
METHODS = [
    "iid percentile bootstrap",
    "pigeonhole percentile bootstrap",
    "CGM Wald, normal",
    "CGM Wald, t(min G - 1)",
    "CGM Wald, t(Satterthwaite)",
    REPORTED,
    "pigeonhole rescaled to CGM, t(Satterthwaite)",
]
assert DEFAULT_INTERVAL == "cgm_logit"  # the library's default is the REPORTED row


def intervals(
    num: npt.NDArray[np.float64],
    den: npt.NDArray[np.float64],
    q: npt.NDArray[np.intp],
    a: npt.NDArray[np.intp],
    rounds: int,
    seed: int,
    reported_only: bool = False,
) -> dict[str, Interval]:
    """Every candidate interval of sum(num) / sum(den) for one study (one bootstrap each)."""
    var = two_way_variance(num, den, q, a)
    if var is None:
        return {}
    r, v, df = var.estimate, var.variance, var.df
    if reported_only:
        return {REPORTED: logit_wald_interval(r, v, LEVEL, df)}
    n = len(num)
    iid = two_way_bootstrap_ratio(num, den, np.arange(n), np.zeros(n), rounds=rounds, seed=seed)
    reps = two_way_bootstrap_ratio(num, den, q, a, rounds=rounds, seed=seed)
    return {
        METHODS[0]: percentile_interval(iid, LEVEL),
        METHODS[1]: percentile_interval(reps, LEVEL),
        METHODS[2]: wald_interval(r, v, LEVEL),
        METHODS[3]: wald_interval(r, v, LEVEL, min(var.n_questions, var.n_annotators) - 1),
        METHODS[4]: wald_interval(r, v, LEVEL, df),
        METHODS[5]: logit_wald_interval(r, v, LEVEL, df),
        METHODS[6]: rescaled_percentile_interval(reps, r, v, LEVEL, df),
    }


def check_reported(
    num: npt.NDArray[np.float64], q: npt.NDArray[np.intp], a: npt.NDArray[np.intp]
) -> None:
    """The report's own path (bootstrap_win_rate, default method) gives the REPORTED row."""
    outcomes = np.where(num == 1.0, "a", np.where(num == 0.5, "tie", "b"))
    got = bootstrap_win_rate(outcomes, q, a, rounds=0)
    want = intervals(num, np.ones_like(num), q, a, 10, 0)[REPORTED]
    assert got.low is not None and got.high is not None and want[0] is not None
    assert abs(got.low - want[0]) + abs(got.high - want[1]) < 1e-12, (got, want)  # type: ignore[operator]


def run_scenario(
    s: Scenario, studies: int, rounds: int, seed: int, decisive: bool, methods: list[str]
) -> tuple[float, dict[str, tuple[float, float, float]]]:
    """(true value, {method: (coverage, its Monte-Carlo se, mean width)})."""
    sd = math.hypot(s.sd_q, s.sd_a)
    mu = solve_mu(s.target, sd)
    truth = mean_sigmoid(mu, sd) if decisive else ties_half_rate(mu, sd)
    rng = np.random.default_rng([seed, SCENARIOS.index(s)])
    qq, aa = np.meshgrid(np.arange(s.n_q), np.arange(s.n_a), indexing="ij")
    hits: dict[str, list[bool]] = {m: [] for m in methods}
    widths: dict[str, list[float]] = {m: [] for m in methods}
    for block in range(0, studies, BLOCK):  # studies drawn in blocks: bounded memory
        score, tie, present = simulate(s, mu, min(BLOCK, studies - block), rng)
        for i in range(len(score)):
            k = block + i
            keep = present[i]
            y, t_ = score[i][keep], tie[i][keep]
            if decisive:
                num, den = (y == 1.0).astype(float), (~t_).astype(float)
            else:
                num, den = y, np.ones_like(y)
            if k == 0 and not decisive:
                check_reported(num, qq[keep], aa[keep])
            only = methods == [REPORTED]
            got = intervals(num, den, qq[keep], aa[keep], rounds, seed + k, only)
            for m in methods:
                low, high = got.get(m, (None, None))
                ok = low is not None and high is not None
                hits[m].append(ok and low <= truth <= high)  # type: ignore[operator]
                widths[m].append(high - low if ok else math.nan)  # type: ignore[operator]
    out = {}
    for m in methods:
        cover = float(np.mean(hits[m]))
        out[m] = (cover, math.sqrt(cover * (1 - cover) / studies), float(np.nanmean(widths[m])))
    return truth, out


def verdict_of(cover: float, se: float) -> str:
    """yes: coverage in 94-96 %; "within 2 se": outside, but by less than twice its MC se."""
    if 0.94 <= cover <= 0.96:
        return "yes"
    return "within 2 se" if min(abs(cover - 0.94), abs(cover - 0.96)) < 2 * se else "no"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="300 studies, 200 rounds, 3000 for the reported"
    )
    parser.add_argument("--studies", type=int, default=2000, help="studies for every candidate")
    parser.add_argument(
        "--reported-studies",
        type=int,
        default=20000,
        help="studies for the reported interval alone (no bootstrap: ~1 ms a study); 0: skip",
    )
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="scenario names (prefixes), comma-separated")
    parser.add_argument(
        "--ties-half-only", action="store_true", help="skip the decisive win rate W / (W + L)"
    )
    args = parser.parse_args()
    studies, rounds, precise = (
        (300, 200, 3000) if args.quick else (args.studies, args.rounds, args.reported_studies)
    )
    chosen = [
        s
        for s in SCENARIOS
        if not args.only or any(s.name.startswith(p.strip()) for p in args.only.split(","))
    ]
    print(
        f"{studies} studies per scenario for every candidate ({rounds} bootstrap rounds per "
        f"interval), {precise} more for the reported interval alone; level {LEVEL}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"load average {load_average()}"
    )
    check = np.random.default_rng(12345)
    truths = []
    for s in chosen:
        sd = math.hypot(s.sd_q, s.sd_a)
        mu = solve_mu(s.target, sd)
        mc = monte_carlo_rate(mu, s, 4_000_000, check)
        truths.append([s.name, s.sd_q, s.sd_a, f"{mu:.4f}", f"{ties_half_rate(mu, sd):.5f}",
                       f"{mc:.5f}", f"{mean_sigmoid(mu, sd):.5f}"])  # fmt: skip
    table(
        "True values (quadrature; Monte Carlo with 4M draws as a check)",
        ["scenario", "sd_q", "sd_a", "mu", "ties-half rate", "Monte Carlo", "decisive rate"],
        truths,
    )
    kinds: list[tuple[str, bool]] = [("ties as half", False)]
    if not args.ties_half_only:
        kinds.append(("decisive", True))
    summary = []
    for label, decisive in kinds:
        rows = []
        for s in chosen:
            began = time.perf_counter()
            _, res = run_scenario(s, studies, rounds, args.seed, decisive, METHODS)
            base = res[METHODS[1]][2]
            for m in METHODS:
                cover, se, width = res[m]
                rows.append(
                    [s.name, m, f"{100 * cover:.1f} ± {100 * se:.1f}", f"{width:.4f}",
                     f"{width / base:.3f}"]
                )  # fmt: skip
            cover, se, width = res[REPORTED]
            line = [label, s.name, f"{100 * res[METHODS[1]][0]:.1f}",
                    f"{100 * cover:.1f} ± {100 * se:.1f}", f"{100 * (1 - width / base):+.1f} %"]  # fmt: skip
            if precise:
                # Independent studies (another seed): the reported interval alone, many more.
                _, big = run_scenario(s, precise, 0, args.seed + 1000, decisive, [REPORTED])
                cover, se, _ = big[REPORTED]
                line.append(f"{100 * cover:.2f} ± {100 * se:.2f}")
            line.append(verdict_of(cover, se))
            summary.append(line)
            print(f"{label}, {s.name}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
        table(
            f"Coverage of the nominal {LEVEL:.0%} interval, win rate {label} ({studies} studies)",
            ["scenario", "method", "coverage % (± MC se)", "mean width", "width / pigeonhole"],
            rows,
        )
    header = ["win rate", "scenario", "pigeonhole coverage %", "reported coverage %",
              "narrower than pigeonhole by"]  # fmt: skip
    if precise:
        header.append(f"reported coverage %, {precise} studies")
    table(
        f"Reported interval ({REPORTED}) against the pigeonhole bootstrap",
        [*header, "in 94-96 %"],
        summary,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
