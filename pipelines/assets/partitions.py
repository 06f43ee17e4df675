"""The analysis's partitions: one per as-of date, from the project's first date (its verdict.yml's first_date, else
the earliest start of its experiments) to yesterday (UTC), the last complete day."""

import datetime as dt

import dagster as dg

from pipelines.registry.spec import read_specs
from pipelines.verdict_project import VerdictProject, current_project


def yesterday() -> dt.date:
    """The last complete day (UTC): the nightly schedule's look."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def first_as_of_date(project: VerdictProject) -> dt.date:
    """The first day the project can be analysed: first_date, else its valid experiments' earliest start, else
    yesterday (a project without experiments yet)."""
    if project.config.first_date is not None:
        return project.config.first_date
    specs, _ = read_specs(project.experiments_dir)
    return min([s.start_date for s in specs], default=yesterday())


AS_OF_DATES = dg.DailyPartitionsDefinition(start_date=first_as_of_date(current_project()).isoformat(), timezone="UTC")
