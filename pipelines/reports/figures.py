"""The report's charts as Plotly figures, from the frames of `pipelines.reports.outcomes`; each is embedded as a
<div> that draws with the shared plotly.js bundle (no JavaScript of its own beyond Plotly's call)."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.colors import qualitative

from pipelines.reports.outcomes import OUTCOME_COLOURS

CONFIG = {"displaylogo": False, "responsive": True}
LAYOUT = {"template": "plotly_white", "margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "font": {"size": 12}}
TREATMENT_COLOURS = qualitative.D3
PAD = 0.12  # room beyond the finite values; an unbounded side of an interval runs to the axis' edge


def finite_range(frame: pl.DataFrame, columns: list[str]) -> tuple[float, float]:
    """The smallest and largest finite value over `columns` (zero included), padded."""
    values = frame.select(pl.concat_list(columns).alias("v")).explode("v").get_column("v")
    values = pl.concat([values.filter(values.is_finite()), pl.Series([0.0])])
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * PAD or 1.0
    return low - pad, high + pad


def clipped(column: str, low: float, high: float) -> pl.Expr:
    """An interval bound drawn within the axis: -inf at its low edge, +inf at its high edge."""
    value = pl.col(column)
    return pl.when(value.is_infinite() & (value < 0)).then(low).when(value.is_infinite()).then(high).otherwise(value)


def shown(column: str, scale: float = 1.0, digits: int = 3) -> pl.Expr:
    """A value for hover text: unbounded sides as ±∞."""
    value = pl.col(column)
    return (
        pl.when(value.is_null()).then(pl.lit("n/a"))
        .when(value.is_infinite() & (value < 0)).then(pl.lit("-∞"))
        .when(value.is_infinite()).then(pl.lit("+∞"))
        .otherwise((value * scale).round_sig_figs(digits).cast(pl.String))
    )  # fmt: skip


def row_label() -> pl.Expr:
    """A comparison's label: metric and treatment."""
    return pl.format("{} · {}", "metric_id", "treatment")


def effect_figure(rows: pl.DataFrame) -> go.Figure:
    """The metrics table's intervals: the relative effect (percent) of each comparison as a bar from its lower to
    its upper bound, coloured by outcome, its estimate as a mark, zero as a line and a guardrail's margin as a tick."""
    percent = rows.with_columns((pl.col(c) * 100).alias(c) for c in ("relative_estimate", "relative_ci_lower", "relative_ci_upper", "relative_margin"))
    low, high = finite_range(percent, ["relative_estimate", "relative_ci_lower", "relative_ci_upper", "relative_margin"])
    drawn = percent.with_columns(
        label=row_label(), lower=clipped("relative_ci_lower", low, high), upper=clipped("relative_ci_upper", low, high),
        hover=pl.format("{}: {}% [{}%, {}%] ({} interval), {}", row_label(), shown("relative_estimate"),
                        shown("relative_ci_lower"), shown("relative_ci_upper"), pl.col("ci_level").round(3), "outcome"),
    )  # fmt: skip
    figure = go.Figure()
    for name, colour in OUTCOME_COLOURS.items():
        part = drawn.filter(pl.col("outcome") == name)
        if part.height:
            figure.add_bar(
                y=part["label"], x=part["upper"] - part["lower"], base=part["lower"], orientation="h", name=name,
                marker_color=colour, opacity=0.75, hovertext=part["hover"], hoverinfo="text", width=0.5,
            )  # fmt: skip
    figure.add_scatter(
        y=drawn["label"], x=drawn["relative_estimate"], mode="markers", name="estimate", hoverinfo="skip",
        marker={"symbol": "diamond", "color": "#222", "size": 9},
    )  # fmt: skip
    guardrails = drawn.filter(pl.col("relative_margin").is_not_null())
    if guardrails.height:
        figure.add_scatter(
            y=guardrails["label"], x=guardrails["relative_margin"], mode="markers", name="non-inferiority margin",
            marker={"symbol": "line-ns-open", "color": "#d73027", "size": 22, "line": {"width": 3}},
            hovertext=guardrails.select(pl.format("margin {}%", shown("relative_margin"))).to_series(), hoverinfo="text",
        )  # fmt: skip
    figure.add_vline(x=0, line_color="#444", line_width=1)
    figure.update_layout(
        **LAYOUT, barmode="overlay", height=90 + 34 * rows.height, title="Relative effect (%) and its interval",
        xaxis={"range": [low, high], "ticksuffix": "%", "zeroline": False},
        yaxis={"autorange": "reversed", "type": "category", "categoryorder": "array", "categoryarray": drawn["label"]},
        legend={"orientation": "h", "y": -0.15},
    )  # fmt: skip
    return figure


def estimate_figure(looks: pl.DataFrame, metric_id: str) -> go.Figure:
    """One metric's cumulative effect (absolute difference) at each look per treatment: the fixed-horizon interval
    as a band, the decision interval (corrected interval, group-sequential bound or confidence sequence) as dashed
    lines, each look's mark coloured by its outcome, zero and a guardrail's margin as lines."""
    ordered = looks.sort("as_of_date")
    low, high = finite_range(ordered, ["estimate", "ci_lower", "ci_upper", "adjusted_ci_lower", "adjusted_ci_upper", "null_hypothesis"])
    drawn = ordered.with_columns(
        **{f"{c}_drawn": clipped(c, low, high) for c in ("ci_lower", "ci_upper", "adjusted_ci_lower", "adjusted_ci_upper")},
        hover=pl.format(
            "{} {}: {} [{}, {}] fixed horizon ({}); [{}, {}] {} ({}); {}", "treatment", "as_of_date", shown("estimate"),
            shown("ci_lower"), shown("ci_upper"), pl.col("ci_level").round(3), shown("adjusted_ci_lower"),
            shown("adjusted_ci_upper"), "decision_interval", pl.col("adjusted_ci_level").round(3), "outcome",
        ),
    )  # fmt: skip
    figure = go.Figure()
    for index, treatment in enumerate(sorted(drawn.get_column("treatment").unique().to_list())):
        _add_treatment(figure, drawn.filter(pl.col("treatment") == treatment), treatment, TREATMENT_COLOURS[index % len(TREATMENT_COLOURS)])
    margin = drawn.filter(pl.col("role") == "guardrail").unique("as_of_date").sort("as_of_date")
    if margin.height:
        figure.add_scatter(
            x=margin["as_of_date"], y=margin["null_hypothesis"], mode="lines", name="non-inferiority margin",
            line={"color": "#d73027", "dash": "dot", "width": 2},
        )  # fmt: skip
    figure.add_hline(y=0, line_color="#444", line_width=1)
    figure.update_layout(
        **LAYOUT, height=340, title=f"{metric_id}: effect at each look (treatment − control)",
        yaxis={"range": [low, high], "zeroline": False}, legend={"orientation": "h", "y": -0.2}, hovermode="closest",
    )  # fmt: skip
    return figure


def exposure_day_figure(days: pl.DataFrame, metric_id: str) -> go.Figure:
    """One metric's relative effect by days since exposure per treatment (the units' values on that day): the
    estimate with its interval as a band, zero as a line. A novelty effect fades with the days, a learning effect
    grows."""
    ordered = days.with_columns(day=pl.col("segment").cast(pl.Int64)).sort("day").with_columns(
        (pl.col(c) * 100).alias(c) for c in ("relative_estimate", "relative_ci_lower", "relative_ci_upper")
    )
    low, high = finite_range(ordered, ["relative_estimate", "relative_ci_lower", "relative_ci_upper"])
    drawn = ordered.with_columns(
        ci_lower_drawn=clipped("relative_ci_lower", low, high), ci_upper_drawn=clipped("relative_ci_upper", low, high),
        hover=pl.format("{} day {}: {}% [{}%, {}%], {} / {} units", "treatment", "day", shown("relative_estimate"),
                        shown("relative_ci_lower"), shown("relative_ci_upper"), "n_control", "n_treatment"),
    )  # fmt: skip
    figure = go.Figure()
    for index, treatment in enumerate(sorted(drawn.get_column("treatment").unique().to_list())):
        colour = TREATMENT_COLOURS[index % len(TREATMENT_COLOURS)]
        rows = drawn.filter(pl.col("treatment") == treatment)
        day = rows.get_column("day").to_list()
        figure.add_scatter(
            x=day + day[::-1], y=rows["ci_upper_drawn"].to_list() + rows["ci_lower_drawn"].reverse().to_list(),
            fill="toself", fillcolor=_transparent(colour), line={"width": 0}, name=f"{treatment}: interval",
            hoverinfo="skip",
        )  # fmt: skip
        figure.add_scatter(
            x=day, y=rows["relative_estimate"], mode="lines+markers", name=f"{treatment}: relative effect",
            line={"color": colour}, hovertext=rows["hover"], hoverinfo="text",
        )  # fmt: skip
    figure.add_hline(y=0, line_color="#444", line_width=1)
    figure.update_layout(
        **LAYOUT, height=300, title=f"{metric_id}: relative effect by days since exposure (%)",
        xaxis={"title": "days since exposure (0: the exposure day)", "dtick": 7}, yaxis={"range": [low, high]},
        legend={"orientation": "h", "y": -0.3}, hovermode="closest",
    )  # fmt: skip
    return figure


def _add_treatment(figure: go.Figure, looks: pl.DataFrame, treatment: str, colour: str) -> None:
    """One treatment's band, decision interval and estimates."""
    dates = looks.get_column("as_of_date").to_list()
    band = looks.get_column("ci_upper_drawn").to_list() + looks.get_column("ci_lower_drawn").reverse().to_list()
    figure.add_scatter(
        x=dates + dates[::-1], y=band, fill="toself", fillcolor=_transparent(colour), line={"width": 0},
        name=f"{treatment}: fixed-horizon interval", hoverinfo="skip",
    )  # fmt: skip
    name = looks.get_column("decision_interval").first()
    for bound, show in (("adjusted_ci_lower_drawn", True), ("adjusted_ci_upper_drawn", False)):
        figure.add_scatter(
            x=dates, y=looks[bound], mode="lines", line={"color": colour, "dash": "dash", "width": 1.5},
            name=f"{treatment}: {name}", legendgroup=f"{treatment}-adjusted", showlegend=show, hoverinfo="skip",
        )  # fmt: skip
    figure.add_scatter(
        x=dates, y=looks["estimate"], mode="lines+markers", name=f"{treatment}: estimate", line={"color": colour},
        marker={"color": looks["outcome"].replace_strict(OUTCOME_COLOURS).to_list(), "size": 8,
                "line": {"color": colour, "width": 1}},
        hovertext=looks["hover"], hoverinfo="text",
    )  # fmt: skip


def _transparent(colour: str, alpha: float = 0.18) -> str:
    """A hex colour as rgba with `alpha`."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def progress_figure(progress: pl.DataFrame) -> go.Figure:
    """Units so far against the units each comparison's design needs for its minimum detectable effect."""
    drawn = progress.with_columns(label=row_label())
    figure = go.Figure()
    figure.add_bar(
        y=drawn["label"], x=drawn["units"], orientation="h", name="units so far", marker_color="#4575b4",
        text=[f"{p:.0%}" for p in drawn["progress"]], textposition="auto",
    )  # fmt: skip
    figure.add_scatter(
        y=drawn["label"], x=drawn["required_sample_size"], mode="markers", name="units the design needs",
        marker={"symbol": "line-ns-open", "size": 22, "color": "#222", "line": {"width": 3}},
    )  # fmt: skip
    figure.update_layout(
        **LAYOUT, height=100 + 34 * drawn.height, title="Sample size: units so far and units needed",
        yaxis={"autorange": "reversed", "type": "category", "categoryorder": "array", "categoryarray": drawn["label"]},
        legend={"orientation": "h", "y": -0.2},
    )  # fmt: skip
    return figure


def exposure_figure(exposures: pl.DataFrame) -> go.Figure:
    """Units first exposed each day, per variant (the figures behind the sample ratio and traffic checks)."""
    figure = go.Figure()
    for index, variant in enumerate(sorted(exposures.get_column("variant").unique().to_list())):
        part = exposures.filter(pl.col("variant") == variant).sort("as_of_date")
        figure.add_bar(x=part["as_of_date"], y=part["new_units"], name=variant,
                       marker_color=TREATMENT_COLOURS[index % len(TREATMENT_COLOURS)])  # fmt: skip
    figure.update_layout(**LAYOUT, height=300, barmode="group", title="Units first exposed each day, per variant",
                         legend={"orientation": "h", "y": -0.2})  # fmt: skip
    return figure


def decisions_figure(counts: dict[str, int]) -> go.Figure:
    """The program's latest recommendations by kind."""
    kinds = sorted(counts, key=lambda kind: -counts[kind])
    colours = {"ship": "#1a9850", "abort": "#d73027", "end": "#fdae61", "continue": "#8c8c8c", "waiting_for_data": "#cccccc"}
    figure = go.Figure(go.Bar(x=kinds, y=[counts[k] for k in kinds], marker_color=[colours.get(k, "#888") for k in kinds]))
    figure.update_layout(**LAYOUT, height=260, title="Latest recommendation per treatment")
    return figure


def figure_html(figure: go.Figure, div_id: str) -> str:
    """The figure as a <div> and its Plotly call, with no script of its own to load."""
    return pio.to_html(figure, full_html=False, include_plotlyjs=False, config=CONFIG, div_id=div_id)
