"""The nightly job's progress in the terminal: a Dagster logger that passes the run's step events to the Python
logger `verdict.progress`, and the handler `verdict run` puts there to move its progress bar."""

from __future__ import annotations

import logging

import dagster as dg

PROGRESS_LOGGER = "verdict.progress"
STEP_DONE = ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED")


@dg.logger(description="The run's events to the Python logger verdict.progress (what `verdict run` shows).")
def progress_logger(_init_context: dg.InitLoggerContext) -> logging.Logger:
    """The Python logger the run's events go to; quiet unless a handler listens (the CLI's progress bar)."""
    logger = logging.getLogger(PROGRESS_LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


class StepProgress(logging.Handler):
    """Count the run's finished steps and name the running ones, for a rich progress bar's task."""

    def __init__(self, progress, task) -> None:
        super().__init__(logging.DEBUG)
        self.progress, self.task = progress, task
        self.running: list[str] = []
        self.done = 0

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_meta", {}).get("dagster_event")
        if event is None or event.step_key is None:
            return
        if event.event_type_value == "STEP_START":
            self.running.append(event.step_key)
        elif event.event_type_value in STEP_DONE:
            self.done += 1
            if event.step_key in self.running:
                self.running.remove(event.step_key)
        self.progress.update(self.task, completed=self.done, step=", ".join(self.running) or "")
