"""The story the synthetic warehouse tells: who the users are, what each demo experiment does, what goes wrong in the logs.

Everything that decides *what* is simulated lives here; `warehouse.py` only decides *how* (the SQL).

Planted effects
---------------
Each experiment in `SCENARIO` gets a share of the population (`traffic`, by a deterministic hash of the unit) and,
per treatment variant, multipliers that act on a unit's behaviour from its first exposure in that experiment on:

* `minutes`: relative change of the minutes of every `stream` event (so of the `minutes_played` metric).
* `purchase_rate`: relative change of the per-session purchase probability (so of `purchases` and `conversion`).
* `upgrade_rate`: relative change of the per-session probability of upgrading to premium (so of `premium_upgrade`).

Crashes (`crash` events, a constant per-session probability) are never planted.

A unit in several experiments gets the product of their multipliers. Experiments without an entry get no effect,
the default traffic share and a correct split.

How `raw.simulation_truth.true_relative_effect` maps to the metrics (treatment vs control, at `end_date`):

* `minutes_played`: exactly the `minutes` change (every stream value is scaled; sessions are not affected).
* `purchases`: exactly the `purchase_rate` change (purchases are per-session Bernoulli draws whose probability is
  scaled; the probability never reaches its cap, so the expected count scales by the same factor).
* `conversion`: the expected relative change of P(at least one purchase between first exposure and end_date),
  averaged over the experiment's exposed units and computed in closed form from the simulated per-session purchase
  probabilities, 1 - prod(1 - q). It is a little smaller than the `purchase_rate` change (saturation), and would be
  a little larger at an earlier as-of date.
* `premium_upgrade`: like `conversion`, for `upgrade` events and the `upgrade_rate` change: the expected relative
  change of P(at least one upgrade between first exposure and end_date), in closed form from the simulated
  per-session upgrade probabilities (a unit may upgrade more than once; the metric counts units, not upgrades).
  Upgrades are rarer than purchases, so it saturates less, but it is still a little smaller than `upgrade_rate`.
* any other metric listed in a spec (e.g. `crash_rate`): 0.

`srm_loss` drops that share of a variant's units from the assignment logs altogether (their behaviour is unchanged):
the experiment is flagged `planted_srm` in the truth table.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Plant:
    """What one experiment does: traffic share, per-variant multipliers and logging loss."""

    traffic: float = 0.5
    minutes: dict[str, float] = field(default_factory=dict)
    purchase_rate: dict[str, float] = field(default_factory=dict)
    upgrade_rate: dict[str, float] = field(default_factory=dict)
    srm_loss: dict[str, float] = field(default_factory=dict)

    @property
    def planted_srm(self) -> bool:
        """Whether some variant loses assignments in the logs (a sample-ratio mismatch)."""
        return any(loss > 0 for loss in self.srm_loss.values())


DEFAULT_PLANT = Plant()

SCENARIO: dict[str, Plant] = {
    # A/A: nothing planted, correct split.
    "aa_homepage_copy": Plant(traffic=0.5),
    # New recommendation model: +12% listening time, nothing else.
    "playlist_recs": Plant(traffic=0.8, minutes={"new_model": 0.12}),
    # Three arms: compact raises the purchase propensity (+30%, so conversion and purchases rise);
    # upsell interrupts playback and costs 15% of listening time (guardrail harm), but sells premium: +50% per-session
    # upgrade probability (so premium_upgrade rises by a little less).
    "checkout_redesign": Plant(
        traffic=0.9,
        purchase_rate={"compact": 0.30},
        minutes={"upsell": -0.15},
        upgrade_rate={"upsell": 0.50},
    ),
    # Planned 50/50, but 15% of short_flow units never reach the assignment log: observed split ~54/46.
    "onboarding_flow": Plant(traffic=0.6, srm_loss={"short_flow": 0.15}),
}


def plant_for(experiment_id: str) -> Plant:
    """The planted story for an experiment (no effect and a correct split if it has none)."""
    return SCENARIO.get(experiment_id, DEFAULT_PLANT)


# --- Population -----------------------------------------------------------------------------------------------

COUNTRIES: dict[str, float] = {
    "US": 0.24, "BR": 0.13, "IN": 0.12, "GB": 0.09, "DE": 0.09, "MX": 0.08, "SE": 0.05, "other": 0.20,
}
# Share of ios among the units of a country (the rest is split android : web as 3 : 1).
IOS_SHARE: dict[str, float] = {
    "US": 0.50, "GB": 0.48, "SE": 0.45, "DE": 0.35, "BR": 0.18, "MX": 0.22, "IN": 0.08, "other": 0.25,
}
SIGNUP_YEARS = 6  # signup dates spread over this many years before the first day of history, denser recently

# Behaviour (per-unit latent traits, each a normal draw through a link function).
ACTIVITY_LOGIT_MEAN = -1.0  # daily activity probability ~ logistic(mean + sd * z), ~0.31 on average
ACTIVITY_LOGIT_SD = 0.7
WEEKEND_LIFT = 1.15  # activity on Saturdays and Sundays
EXTRA_SESSION_P = 0.30  # P(another session on an active day), geometric, at most MAX_SESSIONS per day
MAX_SESSIONS = 4
STREAM_P = 0.92  # share of sessions that play something
MINUTES_MEDIAN = 18.0  # unit-level median minutes per streaming session
MINUTES_UNIT_SD = 0.4  # log-sd of the unit's listening intensity
MINUTES_SESSION_SD = 0.6  # log-sd of one session around the unit's intensity
MINUTES_ACTIVITY_LOADING = 0.25  # heavy users also listen longer
CLICKS_MEAN = 2.0  # clicks per session (geometric, capped at 8)
PURCHASE_P_MEDIAN = 0.03  # unit-level median purchase probability per session
PURCHASE_P_SD = 0.9  # log-sd of that probability across units
PURCHASE_P_CAP = 0.5  # per-unit base cap, so that multiplied probabilities stay well below 1
PLATFORM_PURCHASE: dict[str, float] = {"ios": 1.3, "android": 0.85, "web": 1.0}
REVENUE_MEDIAN = 4.99  # lognormal revenue per purchase
REVENUE_SD = 0.9
UPGRADE_P_MEDIAN = 0.006  # unit-level median probability of upgrading to premium per session
UPGRADE_P_SD = 0.8  # log-sd of that probability across units
UPGRADE_P_CAP = 0.05  # per-unit base cap, so that multiplied probabilities stay well below 1
CRASH_P = 0.02  # per-session probability of an app crash (the same for every unit)

# --- Logging realism ----------------------------------------------------------------------------------------------

REPEAT_LOG_P = 0.35  # P(an assigned unit is logged again on a later active day in the experiment window)
CROSSOVER_P = 0.005  # share of an experiment's units also logged once in another variant
LATE_P = 0.03  # share of rows that arrive 1 h to 2 days late (the rest within two minutes)

# Bad rows, as extra corrupted copies of real rows (so the clean rows stay the truth), per row.
ASSIGNMENT_BAD_P: dict[str, float] = {
    "null_unit": 1.5e-4,
    "unknown_variant": 1.5e-4,
    "unknown_experiment": 1.5e-4,
    "epoch_timestamp": 1e-4,
    "future_timestamp": 1e-4,
}
EVENT_DUPLICATE_P = 1e-3  # same event_id logged twice
EVENT_BAD_P: dict[str, float] = {
    "null_unit": 2e-5,
    "epoch_timestamp": 1.5e-5,
    "future_timestamp": 1.5e-5,
}
UNKNOWN_EXPERIMENT_ID = "legacy_paywall_test"  # an experiment id that no spec defines
