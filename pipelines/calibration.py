"""`verdict validate aa`: the error rates of the nightly job's own code path, measured by simulation.

Every simulated experiment is turned into the frame `SUFFICIENT_STATS_QUERY` returns (one row per experiment x
metric x variant x as-of date, with the design columns), analysed by `experiment_results` and decided by
`experiment_decisions`, exactly as the nightly job does: risk-aware correction, one-sided tests in the preferred
direction, CUPED on each metric's pre-exposure covariate, and the experiment's sequential method.

The simulated world: units arrive over 14 days with uneven daily traffic and are split at random between a
control and a treatment arm; each unit has
- a success metric: a skewed (lognormal) value with a correlated pre-exposure value of the same kind (a share of
  units has no history and gets covariate 0, as the warehouse gives them); the treatment multiplies it;
- a guardrail: a conversion (a proportion) whose probability depends on a pre-exposure conversion; the treatment
  multiplies the probability. Increase-preferred (conversion, high base rate) or decrease-preferred (its
  complement, e.g. churn).
Each look holds the cumulative sums of the units exposed so far, per unit, exactly as the marts compute them.

Designs run to their own required sample size, read from the engine on a large pilot look (`pilot_designs`):
fixed horizon (judged at the last look), group-sequential (planned_units = the engine's required size, judged at
any look) and confidence sequence (tuned at the size it requires, judged at any look).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import polars as pl
from scipy import stats

from pipelines.analysis.decisions import experiment_decisions
from pipelines.analysis.results import experiment_results

LOOKS = 14
START = dt.date(2026, 1, 5)
END = START + dt.timedelta(days=LOOKS - 1)
TREATMENTS = 1
SPEC_POWER = 0.8
CORRECTION = "risk_aware"

SUCCESS, GUARDRAIL = "minutes_played", "conversion"
MDE = 0.10  # the success metric's minimum detectable effect (relative)
# Success metric: lognormal with mean 10 and log-scale sd 1 (a coefficient of variation of 1.31); its pre-exposure
# value has the same distribution and a log-scale correlation of 0.7 with it.
SUCCESS_MEAN, LOG_SD, LOG_CORRELATION = 10.0, 1.0, 0.7
NO_HISTORY = 0.10  # share of units without pre-exposure data: covariate 0 for both metrics
PRE_CONVERTED = 0.45  # share of units that converted before exposure
# P(conversion | converted before, not): 0.95 and 0.70, a base rate of 0.8125; the decrease-preferred guardrail
# is its complement (0.05 and 0.30, a base rate of 0.1875).
CONVERSION_GIVEN_PRE = (0.95, 0.70)

DAILY_TRAFFIC = (0.5, 1.5)  # each day's share of the traffic is proportional to a uniform draw on this range
CHUNK_UNITS = 1_000_000  # units simulated at once: arrays small enough for the allocator to reuse (no page faults)
PILOT_UNITS = 1_000_000  # units per arm of the pilot look the required sample sizes are read from
BAND = 0.999  # the binomial band the verdict column (and the tests) use

METHODS = {"fixed": "none", "gst": "group_sequential", "cs": "confidence_sequence"}

# The columns of `pipelines.analysis.results.SUFFICIENT_STATS_QUERY`, in its order.
STATS_COLUMNS = [
    "experiment_id", "metric_id", "variant", "is_control", "as_of_date", "metric_type", "n", "sum", "sum_sq",
    "sum_sq_abs", "value_shift", "cov_sum", "cov_sum_sq", "cross_sum", "den_sum", "den_sum_sq", "cov_cross_sum", "den_cov_cross_sum",
    "alpha", "power", "correction", "sequential_method", "planned_units", "spending", "spending_rho",
    "sequential_tuning", "start_date", "end_date", "role", "minimum_detectable_effect", "non_inferiority_margin",
    "preferred_direction", "alternative", "planned_weight", "design_treatments", "design_metrics",
    "design_success_metrics", "design_guardrail_metrics",
]  # fmt: skip
NO_FAILED_CHECKS = pl.DataFrame(
    schema={"experiment_id": pl.String, "as_of_date": pl.Date, "check_name": pl.String, "status": pl.String}
)


@dataclass(frozen=True)
class Rate:
    """A proportion of simulated experiments with its exact (Clopper-Pearson) 95% interval."""

    hits: int
    runs: int

    @property
    def value(self) -> float:
        return self.hits / self.runs

    @property
    def interval(self) -> tuple[float, float]:
        lower = stats.beta.ppf(0.025, self.hits, self.runs - self.hits + 1) if self.hits else 0.0
        upper = stats.beta.ppf(0.975, self.hits + 1, self.runs - self.hits) if self.hits < self.runs else 1.0
        return float(lower), float(upper)

    def as_dict(self) -> dict[str, float | int | list[float]]:
        return {"rate": self.value, "ci95": list(self.interval), "hits": self.hits, "runs": self.runs}


def binomial_band(p: float, runs: int, level: float = BAND) -> tuple[float, float]:
    """The central `level` range of the rate of `runs` experiments that each hit with probability p."""
    tail = (1 - level) / 2
    return float(stats.binom.ppf(tail, runs, p) / runs), float(stats.binom.isf(tail, runs, p) / runs)


@dataclass(frozen=True)
class Guardrail:
    """The guardrail's test: preferred direction and relative non-inferiority margin."""

    direction: str = "increase"
    margin: float = 0.05

    @property
    def label(self) -> str:
        return f"{self.direction} {self.margin:.0%}"

    @property
    def at_margin(self) -> float:
        """The relative effect that puts the guardrail exactly on its margin, on the harmful side."""
        return -self.margin if self.direction == "increase" else self.margin

    @property
    def conversion(self) -> tuple[float, float]:
        """P(value 1 | converted before exposure, did not)."""
        a, b = CONVERSION_GIVEN_PRE
        return (a, b) if self.direction == "increase" else (1 - a, 1 - b)


@dataclass(frozen=True)
class Design:
    """One experiment design: its sequential method, the units it runs to (over both arms, reached at the last
    look), its planned units (group-sequential) and tuning (confidence sequence), and its guardrail."""

    method: str  # key of METHODS
    units: int
    guardrail: Guardrail = Guardrail()
    planned_units: int | None = None
    sequential_tuning: float | None = None
    alpha: float = 0.05


@dataclass(frozen=True)
class Scenario:
    """Planted relative effects on the success metric and the guardrail."""

    name: str
    success_effect: float
    guardrail_effect: float
    multiplicative: bool = False  # the success effect scales every value (else it adds effect x mean to each)


# ----------------------------------------------------------------------------------------------- simulation


def daily_counts(rng: np.random.Generator, runs: int, units: int) -> np.ndarray:
    """Units exposed per run x arm (control, treatment) x day: `units` in total per run, reached on the last
    day, with uneven daily traffic (shares proportional to uniform draws) split at random between the arms."""
    weights = rng.uniform(*DAILY_TRAFFIC, size=(runs, LOOKS)).cumsum(axis=1)
    cumulative = np.rint(units * weights / weights[:, -1:]).astype(np.int64)
    per_day = np.diff(cumulative, axis=1, prepend=0)
    treatment = rng.binomial(per_day, 0.5)
    return np.stack([per_day - treatment, treatment], axis=1)


def _group_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of `values` over consecutive groups starting at `starts` (groups with units only)."""
    return np.add.reduceat(values, starts) if values.size else np.zeros(starts.size)


SUMS = ("sum", "sum_sq", "cov_sum", "cov_sum_sq", "cross_sum", "g_sum", "g_cov_sum", "g_cross_sum")


def unit_sums(
    rng: np.random.Generator, counts: np.ndarray, scenario: Scenario, guardrail: Guardrail
) -> dict[str, np.ndarray]:
    """Per-unit values drawn for every exposed unit, summed per run x arm x day (arrays shaped like `counts`).

    Success metric y and its covariate x: log x = mu + s z1, log y = mu + s (r z1 + sqrt(1 - r^2) z2); in the
    treatment arm y gains effect x its mean (a shift: the variance the planning assumes stays), or is multiplied by
    1 + effect (`multiplicative`: the variance grows with it); x = 0 for units without history. Guardrail g ~ Bernoulli(p(pre) (1 + effect)),
    its covariate the pre-exposure conversion. Simulated in chunks of runs (whole runs, at most CHUNK_UNITS units
    where a run allows)."""
    runs = counts.shape[0]
    per_run = counts.reshape(runs, -1).sum(axis=1)
    out = {name: np.zeros(counts.shape) for name in SUMS}
    mu = np.log(SUCCESS_MEAN) - LOG_SD**2 / 2
    a, b = guardrail.conversion
    first = 0
    while first < runs:
        last = first + max(1, int(np.searchsorted(per_run[first:].cumsum(), CHUNK_UNITS, side="right")))
        block = counts[first:last].ravel()
        size = int(block.sum())
        treated = np.repeat(np.tile([False, True], (last - first, 1))[:, :, None].repeat(LOOKS, 2).ravel(), block)
        z1, z2 = rng.standard_normal((2, size), dtype=np.float32).astype(np.float64)
        u1, u2 = rng.random((2, size), dtype=np.float32)
        history = u1 >= NO_HISTORY
        x = np.where(history, np.exp(mu + LOG_SD * z1), 0.0)
        y = np.exp(mu + LOG_SD * (LOG_CORRELATION * z1 + np.sqrt(1 - LOG_CORRELATION**2) * z2))
        if scenario.multiplicative:
            y *= np.where(treated, 1.0 + scenario.success_effect, 1.0)
        else:
            y += np.where(treated, scenario.success_effect * SUCCESS_MEAN, 0.0)
        pre = (history & (u1 < NO_HISTORY + PRE_CONVERTED)).astype(np.float64)
        p = np.where(pre > 0, a, b) * np.where(treated, 1.0 + scenario.guardrail_effect, 1.0)
        g = (u2 < p).astype(np.float64)
        nonempty = np.flatnonzero(block)
        starts = np.concatenate([[0], np.cumsum(block[nonempty])[:-1]])
        values = {"sum": y, "sum_sq": y * y, "cov_sum": x, "cov_sum_sq": x * x, "cross_sum": x * y,
                  "g_sum": g, "g_cov_sum": pre, "g_cross_sum": g * pre}  # fmt: skip
        for name, v in values.items():
            flat = np.zeros(block.size)
            flat[nonempty] = _group_sums(v, starts)
            out[name][first:last] = flat.reshape(counts[first:last].shape)
        first = last
    return out


def _design_columns(design: Design) -> dict[str, pl.Expr]:
    """The experiment's design columns as the registry gives them."""
    return {
        "alpha": pl.lit(design.alpha, pl.Float64),
        "power": pl.lit(SPEC_POWER, pl.Float64),
        "correction": pl.lit(CORRECTION),
        "sequential_method": pl.lit(METHODS[design.method]),
        "planned_units": pl.lit(design.planned_units, pl.Int64),
        "spending": pl.lit("power"),
        "spending_rho": pl.lit(2.0, pl.Float64),
        "sequential_tuning": pl.lit(design.sequential_tuning, pl.Float64),
        "start_date": pl.lit(START, pl.Date),
        "end_date": pl.lit(END, pl.Date),
        "planned_weight": pl.lit(0.5, pl.Float64),
        "design_treatments": pl.lit(TREATMENTS, pl.Int64),
        "design_metrics": pl.lit(2, pl.Int64),
        "design_success_metrics": pl.lit(1, pl.Int64),
        "design_guardrail_metrics": pl.lit(1, pl.Int64),
        "alternative": pl.lit(None, pl.String),
    }


def stats_frame(counts: np.ndarray, sums: dict[str, np.ndarray], design: Design, prefix: str) -> pl.DataFrame:
    """The sufficient-statistics frame of the runs (`counts`: run x arm x day), cumulative over the looks, with
    the design columns: what `SUFFICIENT_STATS_QUERY` returns for these experiments."""
    runs = counts.shape[0]
    looks = counts.shape[2]
    cumulative = {name: v.cumsum(axis=2).ravel() for name, v in sums.items()}
    n = counts.cumsum(axis=2).ravel()
    ids = np.char.add(f"{prefix}-", np.char.zfill(np.arange(runs).astype(str), 5))
    base = pl.DataFrame({
        "experiment_id": np.repeat(ids, 2 * looks),
        "variant": np.tile(np.repeat(np.array(["control", "treatment"]), looks), runs),
        "look": np.tile(np.arange(looks), 2 * runs),
        "n": n,
    })  # fmt: skip
    success = base.with_columns(
        metric_id=pl.lit(SUCCESS), metric_type=pl.lit("mean"), role=pl.lit("success"),
        **{c: pl.Series(cumulative[c]) for c in ("sum", "sum_sq", "cov_sum", "cov_sum_sq", "cross_sum")},
        minimum_detectable_effect=pl.lit(MDE), non_inferiority_margin=pl.lit(None, pl.Float64),
        preferred_direction=pl.lit("increase"),
    )  # fmt: skip
    guardrail = base.with_columns(
        metric_id=pl.lit(GUARDRAIL), metric_type=pl.lit("proportion"), role=pl.lit("guardrail"),
        sum=pl.Series(cumulative["g_sum"]), sum_sq=pl.Series(cumulative["g_sum"]),
        cov_sum=pl.Series(cumulative["g_cov_sum"]), cov_sum_sq=pl.Series(cumulative["g_cov_sum"]),
        cross_sum=pl.Series(cumulative["g_cross_sum"]),
        minimum_detectable_effect=pl.lit(None, pl.Float64), non_inferiority_margin=pl.lit(design.guardrail.margin),
        preferred_direction=pl.lit(design.guardrail.direction),
    )  # fmt: skip
    return (
        pl.concat([success, guardrail])
        .with_columns(
            is_control=pl.col("variant") == "control",
            as_of_date=pl.lit(START, pl.Date) + pl.duration(days=pl.col("look")),
            sum_sq_abs=pl.col("sum_sq"),  # sums of squares of the values themselves (no shift)
            value_shift=pl.lit(0.0),
            **{c: pl.lit(None, pl.Float64) for c in ("den_sum", "den_sum_sq", "cov_cross_sum", "den_cov_cross_sum")},
            **_design_columns(design),
        )
        .select(STATS_COLUMNS)
    )


def spec_metrics(stats: pl.DataFrame) -> pl.DataFrame:
    """The experiments' metrics and roles, as the nightly job reads them from the registry."""
    return stats.select("experiment_id", "metric_id", "role").unique()


def analyse_runs(stats: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The nightly path: results, then decisions with no failed health check."""
    results = experiment_results(stats, recorded=None)
    return results, experiment_decisions(results, NO_FAILED_CHECKS, spec_metrics(stats))


# ----------------------------------------------------------------------------------------------- designs


def pilot_stats(rng: np.random.Generator, guardrail: Guardrail, design: Design) -> pl.DataFrame:
    """One large A/A look (PILOT_UNITS per arm, all on the last day) under `design`."""
    counts = np.zeros((1, 2, LOOKS), dtype=np.int64)
    counts[0, :, -1] = PILOT_UNITS
    sums = unit_sums(rng, counts, Scenario("pilot", 0.0, 0.0), guardrail)
    return stats_frame(counts, sums, design, "pilot").filter(pl.col("as_of_date") == END)


def required_sizes(pilot: pl.DataFrame, design: Design) -> dict[str, float]:
    """The engine's required sample size (units over both arms) per metric under `design`, and the adjusted power
    and alpha it is planned at."""
    frame = pilot.with_columns(**_design_columns(design))
    results = experiment_results(frame)
    rows = {r["metric_id"]: r for r in results.iter_rows(named=True)}
    return {
        "success": float(rows[SUCCESS]["required_sample_size"]),
        "guardrail": float(rows[GUARDRAIL]["required_sample_size"]),
        "adjusted_power": float(rows[SUCCESS]["adjusted_power"]),
        "success_adjusted_alpha": float(rows[SUCCESS]["adjusted_alpha"]),
        "guardrail_adjusted_alpha": float(rows[GUARDRAIL]["adjusted_alpha"]),
    }


def _even(units: float) -> int:
    return int(2 * np.ceil(units / 2))


def pilot_designs(seed: int, guardrails: tuple[Guardrail, ...], alpha: float) -> dict[tuple[str, str], dict]:
    """Per (method, guardrail label): the design and the engine's required sizes on a pilot look.

    The run length is the larger of the success metric's and the guardrail's requirement. Group-sequential:
    planned_units is that size. Confidence sequence: its tuning is set to the size it requires, by fixed-point
    iteration from the fixed-horizon size (the requirement depends on the tuning)."""
    out: dict[tuple[str, str], dict] = {}
    for k, guardrail in enumerate(guardrails):
        pilot = pilot_stats(np.random.default_rng([seed, 999]), guardrail, Design("fixed", 0, guardrail))
        fixed = required_sizes(pilot, Design("fixed", 0, guardrail, alpha=alpha))
        units = _even(max(fixed["success"], fixed["guardrail"]))
        designs = {"fixed": (Design("fixed", units, guardrail, alpha=alpha), fixed)}
        gst = Design("gst", 2 * PILOT_UNITS, guardrail, planned_units=2 * PILOT_UNITS, alpha=alpha)
        sizes = required_sizes(pilot, gst)
        units = _even(max(sizes["success"], sizes["guardrail"]))
        designs["gst"] = (replace(gst, units=units, planned_units=units), sizes)
        tuning = float(designs["fixed"][0].units)
        for _ in range(20):
            cs = Design("cs", 0, guardrail, sequential_tuning=tuning, alpha=alpha)
            sizes = required_sizes(pilot, cs)
            units = _even(max(sizes["success"], sizes["guardrail"]))
            done = abs(units - tuning) <= 0.001 * tuning
            tuning = float(units)
            if done:
                break
        designs["cs"] = (replace(cs, units=units, sequential_tuning=tuning), sizes)
        for method, (design, sizes) in designs.items():
            out[(method, guardrail.label)] = {"design": design, "required": sizes}
    return out


# ----------------------------------------------------------------------------------------------- measurement


@dataclass(frozen=True)
class Outcome:
    """Per run of one scenario: whether the success metric was significant in its preferred direction, the
    guardrail shown non-inferior, the treatment shipped (at the judged looks), and the naive any-look flag."""

    success: np.ndarray
    guardrail: np.ndarray
    ship: np.ndarray
    success_any_look: np.ndarray
    rows_without_verdict: int


def outcomes(results: pl.DataFrame, decisions: pl.DataFrame, method: str) -> Outcome:
    """Judge each run: a fixed-horizon design at its last look, a sequential one at any look."""
    judged = pl.col("as_of_date") == END if method == "fixed" else pl.lit(True)

    def per_run(frame: pl.DataFrame, flag: pl.Expr) -> np.ndarray:
        return (
            frame.group_by("experiment_id").agg(flag.fill_null(False).any().alias("hit"))
            .sort("experiment_id").get_column("hit").to_numpy()
        )  # fmt: skip

    success = results.filter(pl.col("metric_id") == SUCCESS)
    guardrail = results.filter(pl.col("metric_id") == GUARDRAIL)
    preferred = pl.col("is_significant_preferred")
    with_estimate = results.filter(pl.col("std_error").is_not_null())
    missing = with_estimate.filter(pl.col("is_significant").is_null() | pl.col("is_deteriorating").is_null()).height
    return Outcome(
        success=per_run(success, judged & preferred),
        guardrail=per_run(guardrail, judged & preferred),
        ship=per_run(decisions, judged & (pl.col("decision") == "ship")),
        success_any_look=per_run(success, preferred),
        rows_without_verdict=missing,
    )


def run_scenario(seed: tuple[int, ...], runs: int, design: Design, scenario: Scenario) -> Outcome:
    """Simulate `runs` experiments of `design` under `scenario` and judge them through the nightly path."""
    rng = np.random.default_rng(list(seed))
    counts = daily_counts(rng, runs, design.units)
    sums = unit_sums(rng, counts, scenario, design.guardrail)
    stats = stats_frame(counts, sums, design, f"{scenario.name}-{design.method}")
    results, decisions = analyse_runs(stats)
    return outcomes(results, decisions, design.method)


def _entry(hits: np.ndarray, nominal: float, rule: str) -> dict:
    """A rate with its interval, its nominal value and how it compares (`rule`: 'equal', 'at_most', 'at_least',
    or 'informative': shown beside the nominal, not judged), judged against the BAND binomial band of the nominal rate."""
    rate = Rate(int(hits.sum()), int(hits.size))
    lower, upper = binomial_band(nominal, rate.runs)
    verdict = {
        "equal": "ok" if lower <= rate.value <= upper else ("too high" if rate.value > upper else "too low"),
        "at_most": "ok" if rate.value <= upper else "too high",
        "at_least": "ok" if rate.value >= lower else "too low",
        "informative": "not promised",
    }[rule]
    return {**rate.as_dict(), "nominal": nominal, "rule": rule, "band": [lower, upper], "verdict": verdict}


INCREASE_5 = Guardrail("increase", 0.05)
DECREASE_20 = Guardrail("decrease", 0.20)


def validate_aa(runs: int, seed: int, alpha: float = 0.05) -> dict:
    """Error rates and power of the nightly path, per sequential method (see the module docstring).

    Five scenarios per method, `runs` experiments each: A/A; the success metric at its MDE (a shift of every
    value, the variance unchanged as the planning assumes) with the guardrail unharmed; the same with an effect
    that multiplies every value (its variance grows by (1 + MDE)^2: informative, the planning does not promise
    the power there); the success metric at its MDE with the guardrail exactly on its margin (increase-preferred,
    5%), and the same with a decrease-preferred guardrail and a 20% margin."""
    guardrails = (INCREASE_5, DECREASE_20)
    designs = pilot_designs(seed, guardrails, alpha)
    report: dict = {
        "runs": runs, "seed": seed, "alpha": alpha, "looks": LOOKS, "spec_power": SPEC_POWER,
        "minimum_detectable_effect": MDE,
        "settings": {"correction": CORRECTION, "tests": "one-sided in the preferred direction", "cuped": True,
                     "spending": "power, rho 2", "treatments": TREATMENTS},
        "designs": {}, "size": {}, "power_at_mde": {}, "power_at_mde_multiplicative": {}, "guardrail_size": {},
        "decision": {},
    }  # fmt: skip
    false_positive, power = {}, {}
    guardrail_fp, guardrail_power = {}, {}
    for m, method in enumerate(METHODS):
        base = designs[(method, INCREASE_5.label)]
        design, required = base["design"], base["required"]
        adjusted_power = required["adjusted_power"]
        report["designs"][method] = {
            "sequential_method": METHODS[method], "units": design.units, "planned_units": design.planned_units,
            "sequential_tuning": design.sequential_tuning, "required_success": required["success"],
            "required_guardrail": {g.label: designs[(method, g.label)]["required"]["guardrail"] for g in guardrails},
            "adjusted_power": adjusted_power, "success_adjusted_alpha": required["success_adjusted_alpha"],
            "guardrail_adjusted_alpha": required["guardrail_adjusted_alpha"],
            "judged": "last look" if method == "fixed" else "any look",
        }  # fmt: skip
        aa = run_scenario((seed, m, 0), runs, design, Scenario("aa", 0.0, 0.0))
        mde = run_scenario((seed, m, 1), runs, design, Scenario("mde", MDE, 0.0))
        scaled = run_scenario((seed, m, 9), runs, design, Scenario("scaled", MDE, 0.0, multiplicative=True))
        margins = {
            g.label: run_scenario(
                (seed, m, 2 + k), runs, designs[(method, g.label)]["design"], Scenario("margin", MDE, g.at_margin)
            )
            for k, g in enumerate(guardrails)
        }
        success_alpha = required["success_adjusted_alpha"]
        guardrail_alpha = required["guardrail_adjusted_alpha"]
        size_check = "equal" if method == "fixed" else "at_most"
        report["size"][method] = _entry(aa.success, success_alpha, size_check)
        # a confidence sequence sized for its power at its planned n can cross earlier too: at least the power
        report["power_at_mde"][method] = _entry(mde.success, adjusted_power, "at_least" if method == "cs" else "equal")
        report["power_at_mde_multiplicative"][method] = _entry(scaled.success, adjusted_power, "informative")
        report["guardrail_size"][method] = {
            label: _entry(outcome.guardrail, guardrail_alpha, size_check) for label, outcome in margins.items()
        }
        report["decision"][method] = {
            "ship_aa": _entry(aa.ship, alpha, "at_most"),
            **{f"ship_guardrail_at_margin ({label})": _entry(o.ship, alpha, "at_most") for label, o in margins.items()},
            "ship_at_mde": _entry(mde.ship, SPEC_POWER, "at_least"),
        }
        report.setdefault("rows_without_verdict", {})[method] = (
            aa.rows_without_verdict + mde.rows_without_verdict + sum(o.rows_without_verdict for o in margins.values())
        )
        if method == "fixed":
            report["size"]["naive_daily_peeking"] = _entry(aa.success_any_look, success_alpha, "at_most")
            false_positive["naive_daily_peeking"] = report["size"]["naive_daily_peeking"]
        false_positive[method] = report["size"][method]
        power[method] = report["power_at_mde"][method]
        guardrail_fp[method] = report["guardrail_size"][method][INCREASE_5.label]
        guardrail_power[method] = _entry(mde.guardrail, adjusted_power, "at_least")
    report["false_positive_rate"] = {method: entry["rate"] for method, entry in false_positive.items()}
    report["power"] = {method: entry["rate"] for method, entry in power.items()} | {
        "designed": report["designs"]["fixed"]["adjusted_power"], "spec": SPEC_POWER, "relative_effect": MDE,
    }
    report["by_metric_type"] = {
        "mean": {"false_positive_rate": false_positive, "power": power},
        "proportion": {"false_positive_rate": guardrail_fp, "power": guardrail_power},
    }
    return report


def report_rows(report: dict) -> list[dict]:
    """The report's rates as one flat list (for the table): check, method, and the rate entry."""
    rows = []
    for method in METHODS:
        rows.append({"check": "success size, A/A", "method": method, **report["size"][method]})
        if method == "fixed":
            rows.append({"check": "naive daily peeking, A/A", "method": "fixed at every look",
                         **report["size"]["naive_daily_peeking"]})  # fmt: skip
        rows.append({"check": f"success power at MDE {MDE:.0%}", "method": method, **report["power_at_mde"][method]})
        rows.append({"check": f"  same, effect multiplying each value", "method": method,
                     **report["power_at_mde_multiplicative"][method]})  # fmt: skip
        for label, entry in report["guardrail_size"][method].items():
            rows.append({"check": f"guardrail size at margin ({label})", "method": method, **entry})
        for case, entry in report["decision"][method].items():
            name = {"ship_aa": "P(ship), A/A", "ship_at_mde": "P(ship), success at MDE, guardrail unharmed"}.get(
                case, case.replace("ship_guardrail_at_margin", "P(ship), guardrail at margin")
            )
            rows.append({"check": name, "method": method, **entry})
    return rows
