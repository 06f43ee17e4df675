"""What a report says, derived from the results tables with vectorised Polars: each comparison's outcome in its
metric's preferred direction, the tests in words, the latest look, sample-size progress and the program view."""

from __future__ import annotations

import polars as pl

BETTER, WORSE, INCONCLUSIVE, NON_INFERIOR = "better", "worse", "inconclusive", "non-inferior"
OUTCOME_COLOURS = {BETTER: "#1a9850", WORSE: "#d73027", NON_INFERIOR: "#4575b4", INCONCLUSIVE: "#8c8c8c"}
DECIDED = ("ship", "abort", "end")
HEALTH_ORDER = {"fail": 0, "warn": 1, "pass": 2, "not_applicable": 3}
ROLE_ORDER = {"success": 0, "guardrail": 1, "deterioration": 2}
SEQUENTIAL_NAMES = {
    "none": "fixed horizon", "group_sequential": "group-sequential", "confidence_sequence": "confidence sequence",
}  # fmt: skip
# The interval that decides a look: the corrected fixed-horizon interval, the group-sequential bound or the sequence.
DECISION_INTERVAL_NAMES = {
    "none": "corrected interval", "group_sequential": "group-sequential bound",
    "confidence_sequence": "confidence sequence",
}  # fmt: skip
RATE_DAYS = 7  # the current traffic: new units a day over the last week of looks


def latest(frame: pl.DataFrame) -> pl.DataFrame:
    """Each experiment's rows at its latest look."""
    return frame.filter(pl.col("as_of_date") == pl.col("as_of_date").max().over("experiment_id"))


def outcome() -> pl.Expr:
    """A comparison's outcome in its metric's preferred direction, after correction and sequential adjustment:
    worse (a significant deterioration, or significant against the preferred side), non-inferior (a guardrail
    shown within its margin), better, else inconclusive."""
    significant = pl.col("is_significant").fill_null(False)
    preferred = pl.col("is_significant_preferred").fill_null(False)
    return (
        pl.when(pl.col("is_deteriorating").fill_null(False) | (significant & ~preferred)).then(pl.lit(WORSE))
        .when((pl.col("role") == "guardrail") & preferred).then(pl.lit(NON_INFERIOR))
        .when(preferred).then(pl.lit(BETTER))
        .otherwise(pl.lit(INCONCLUSIVE))
    )  # fmt: skip


def relative_margin() -> pl.Expr:
    """A guardrail's non-inferiority margin as a relative effect on its harmful side (null for other roles)."""
    margin = pl.col("non_inferiority_margin").abs()
    signed = pl.when(pl.col("preferred_direction") == "decrease").then(margin).otherwise(-margin)
    return pl.when(pl.col("role") == "guardrail").then(signed)


def test_description() -> pl.Expr:
    """The metric's test in words: the statistic, the hypothesis, its side and the design."""
    statistic = pl.when(pl.col("method") == "t").then(pl.lit("Welch t-test")).otherwise(pl.lit("z-test"))
    hypothesis = (
        pl.when(pl.col("role") == "guardrail").then(pl.lit("non-inferiority"))
        .when(pl.col("role") == "deterioration").then(pl.lit("deterioration check"))
        .otherwise(pl.lit("superiority"))
    )  # fmt: skip
    side = (
        pl.when(pl.col("alternative") == "greater").then(pl.lit("one-sided, increase preferred"))
        .when(pl.col("alternative") == "less").then(pl.lit("one-sided, decrease preferred"))
        .otherwise(pl.lit("two-sided"))
    )  # fmt: skip
    design = pl.col("sequential_method").replace_strict(SEQUENTIAL_NAMES, default=pl.col("sequential_method"))
    correction = pl.col("correction").str.replace_all("_", "-")
    return pl.format("{}, {} ({}); {}, {} correction", statistic, hypothesis, side, design, correction)


def with_report_columns(results: pl.DataFrame, spec_metrics: pl.DataFrame) -> pl.DataFrame:
    """The results with the columns a report shows: outcome, the guardrail's relative margin, the test in words,
    the decision interval's name, the units so far and the role's sort order."""
    spec = spec_metrics.select("experiment_id", "metric_id", "non_inferiority_margin", "preferred_direction")
    return results.join(spec, on=["experiment_id", "metric_id"], how="left").with_columns(
        outcome=outcome(),
        relative_margin=relative_margin(),
        test=test_description(),
        decision_interval=pl.col("sequential_method").replace_strict(DECISION_INTERVAL_NAMES, default="adjusted interval"),
        units=pl.col("n_control").fill_null(0) + pl.col("n_treatment").fill_null(0),
        role_order=pl.col("role").replace_strict(ROLE_ORDER, default=len(ROLE_ORDER)),
    )


def metric_rows(results: pl.DataFrame) -> pl.DataFrame:
    """The latest look's comparisons in table order: success metrics, guardrails, deterioration checks."""
    return latest(results).sort(["role_order", "metric_id", "treatment"])


def health_rows(health: pl.DataFrame) -> pl.DataFrame:
    """The latest look's health checks, failed first, then warnings, passes and checks that do not apply."""
    return latest(health).with_columns(
        order=pl.col("status").replace_strict(HEALTH_ORDER, default=len(HEALTH_ORDER))
    ).sort(["order", "check_name"])


def health_summary(health: pl.DataFrame) -> pl.DataFrame:
    """Per experiment: its worst health status at the latest look and the checks with that status."""
    rows = health_rows(health)
    return rows.group_by("experiment_id").agg(
        health=pl.col("status").sort_by("order").first(),
        health_checks=pl.col("check_name").filter(pl.col("order") == pl.col("order").min()).sort().str.join(", "),
        failed=(pl.col("status") == "fail").sum(),
        warned=(pl.col("status") == "warn").sum(),
    )


def spotlight(decisions: pl.DataFrame) -> pl.DataFrame:
    """The latest look's recommendation per treatment with its reason, and the look at which it was first made
    (the recommendation has held since)."""
    ordered = decisions.sort("as_of_date")
    changed = pl.col("decision") != pl.col("decision").shift(1).over(["experiment_id", "treatment"])
    since = ordered.with_columns(run_start=changed.fill_null(True).cum_sum().over(["experiment_id", "treatment"]))
    since = since.with_columns(since=pl.col("as_of_date").min().over(["experiment_id", "treatment", "run_start"]))
    return latest(since).select("experiment_id", "as_of_date", "treatment", "decision", "reason", "since").sort(
        ["experiment_id", "treatment"]
    )


def first_decisions(decisions: pl.DataFrame, experiments: pl.DataFrame) -> pl.DataFrame:
    """Per experiment and treatment whose latest recommendation is ship, abort or end: the look since which it has
    held (a recommendation that flipped back to continue in between counts from its return) and the days from the
    experiment's start to that look."""
    decided = spotlight(decisions).filter(pl.col("decision").is_in(DECIDED))
    return decided.join(experiments.select("experiment_id", "start_date"), on="experiment_id", how="left").with_columns(
        decided_on=pl.col("since"), days_to_decision=(pl.col("since") - pl.col("start_date")).dt.total_days() + 1
    )


def sample_size_progress(results: pl.DataFrame) -> pl.DataFrame:
    """Per comparison with a minimum detectable effect: units so far against the units the design needs, the units
    a day over the last looks and the expected date at that traffic (none once powered or without traffic)."""
    sized = results.filter(pl.col("required_sample_size").is_finite())  # none for a look without the variance
    key = ["experiment_id", "metric_id", "treatment"]
    window = pl.col("as_of_date") >= pl.col("as_of_date").max().over(key) - pl.duration(days=RATE_DAYS)
    recent = sized.filter(window).sort("as_of_date")
    rate = recent.group_by(key).agg(
        units_per_day=(pl.col("units").last() - pl.col("units").first())
        / ((pl.col("as_of_date").last() - pl.col("as_of_date").first()).dt.total_days().cast(pl.Float64)),
    )
    remaining = pl.col("required_sample_size") - pl.col("units")
    reachable = (remaining > 0) & (pl.col("units_per_day") > 0) & pl.col("units_per_day").is_finite()
    days_left = pl.when(reachable).then((remaining / pl.col("units_per_day")).ceil()).cast(pl.Int64, strict=False)
    return (
        latest(sized).join(rate, on=key, how="left")
        .with_columns(
            progress=pl.col("units") / pl.col("required_sample_size"),
            expected_date=pl.when(reachable).then(pl.col("as_of_date") + pl.duration(days=days_left)),
        )
        .select(*key, "role", "role_order", "as_of_date", "units", "required_sample_size", "progress", "units_per_day",
                "expected_date", "is_powered")
        .sort(["role_order", "metric_id", "treatment"])
    )  # fmt: skip


def new_exposures(exposures: pl.DataFrame) -> pl.DataFrame:
    """Units first exposed on each day per variant, from the cumulative daily counts."""
    previous = pl.col("exposed_units").shift(1).over(["experiment_id", "variant"], order_by="as_of_date")
    return exposures.sort("as_of_date").with_columns(new_units=pl.col("exposed_units") - previous.fill_null(0))


def lineage(*frames: pl.DataFrame) -> pl.DataFrame:
    """The runs that wrote the latest look of each history table that records them: run id, code version and
    data watermark."""
    columns = ["experiment_id", "as_of_date", "run_id", "code_version", "data_watermark"]
    parts = [latest(frame).select(columns) for frame in frames if set(columns) <= set(frame.columns)]
    if not parts:
        return pl.DataFrame(schema={c: pl.String for c in columns})
    return pl.concat(parts, how="vertical_relaxed").unique().sort(["experiment_id", "run_id"], nulls_last=True)


def experiment_index(frames_results: pl.DataFrame, decisions: pl.DataFrame, health: pl.DataFrame,
                     experiments: pl.DataFrame) -> pl.DataFrame:  # fmt: skip
    """One row per experiment with results: name, status (running or ended), days running, the latest look, its
    recommendations and its health."""
    looks = frames_results.group_by("experiment_id").agg(latest_look=pl.col("as_of_date").max())
    recommendations = spotlight(decisions).group_by("experiment_id").agg(
        recommendation=pl.format("{}: {}", "treatment", "decision").sort().str.join("; "),
        decisions=pl.col("decision").unique().sort(),
    )
    ended = pl.col("end_date").is_not_null() & (pl.col("latest_look") >= pl.col("end_date"))
    return (
        looks.join(experiments, on="experiment_id", how="left")
        .join(recommendations, on="experiment_id", how="left")
        .join(health_summary(health), on="experiment_id", how="left")
        .with_columns(
            status=pl.when(ended).then(pl.lit("ended")).otherwise(pl.lit("running")),
            days_running=(pl.min_horizontal("latest_look", "end_date") - pl.col("start_date")).dt.total_days() + 1,
        )
        .sort("experiment_id")
    )


def learned() -> pl.Expr:
    """A comparison that learned something: a success metric significant either way, or a deterioration."""
    success = (pl.col("role") == "success") & pl.col("is_significant").fill_null(False)
    return success | pl.col("is_deteriorating").fill_null(False)


def program_view(results: pl.DataFrame, decisions: pl.DataFrame, experiments: pl.DataFrame) -> dict[str, object]:
    """Across experiments: the latest recommendations by kind, the share of experiments that learned something,
    the median days to a first ship / abort / end, and the metrics most often moved (better or worse)."""
    now = latest(results)
    counts = spotlight(decisions).group_by("decision").len()
    per_experiment = now.group_by("experiment_id").agg(learned=learned().any())
    first = first_decisions(decisions, experiments)
    moved = (
        now.filter(pl.col("outcome").is_in([BETTER, WORSE]))
        .group_by("metric_id")
        .agg(
            moved=pl.len(), better=(pl.col("outcome") == BETTER).sum(), worse=(pl.col("outcome") == WORSE).sum(),
            experiments=pl.col("experiment_id").n_unique(),
        )
        .sort(["moved", "metric_id"], descending=[True, False])
    )  # fmt: skip
    return {
        "decision_counts": {d: c for d, c in counts.iter_rows()},
        "treatments": counts.get_column("len").sum(),
        "experiments": per_experiment.height,
        "learned": int(per_experiment.get_column("learned").sum()),
        "learned_share": per_experiment.get_column("learned").mean() if per_experiment.height else None,
        "median_days_to_decision": first.get_column("days_to_decision").median(),
        "decided_treatments": first.height,
        "moved_metrics": moved,
    }
