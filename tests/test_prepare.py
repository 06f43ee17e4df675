"""`verdict prepare` (the manifest the definitions load) parses the dbt project only when what dbt reads changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.project import parse_fingerprint, prepare_manifest


def test_the_manifest_is_parsed_again_only_when_what_dbt_reads_changes(manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = prepare_manifest().stat().st_mtime_ns  # parsed for this process's environment (if not already)
    assert prepare_manifest().stat().st_mtime_ns == parsed  # nothing changed since: no parse
    monkeypatch.setenv("VERDICT_PARSE_PROBE", "1")  # an environment variable the project's SQL could read
    assert prepare_manifest().stat().st_mtime_ns > parsed


def test_the_fingerprint_follows_the_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    before = parse_fingerprint()
    assert parse_fingerprint() == before
    monkeypatch.setenv("VERDICT_METRIC_MODELS", "another,list")
    assert parse_fingerprint() != before
