"""The reference checks accept any valid file of the documented format, not only the shipped one: modified copies
of the reference files (a kind dropped, a spot-1 family without its guardrails, degenerate gbstats cases kept,
one family only, lines and rows reordered, ids renamed) are written to tmp_path and run through the same checking
functions as the shipped files.

Every modification keeps the expected values valid: dropping records or reordering them changes no value, and a
spot-1 family loses its guardrails only where the library's own formulas give the new values (see
`without_guardrails`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from scipy import special

import reference_vectors as ref
import test_reference_confidence as confidence
import test_reference_cuped as cuped
import test_reference_gbstats as gbstats
import test_reference_sequential as sequential

pytestmark = pytest.mark.reference


def check_confidence_file(path: Path) -> dict[str, int]:
    """Every check of a spotify-confidence file: families checked per module."""
    return {"fixed": confidence.check_file(path), "cuped": cuped.check_file(path), "gst": sequential.check_gst_file(path)}


def check_gbstats_file(path: Path) -> dict[str, int]:
    """Every check of a gbstats file: cases checked per module."""
    return {
        "fixed": gbstats.check_file(path), "sequential": sequential.check_sequence_file(path),
        "statuses": gbstats.check_statuses(path),
    }  # fmt: skip


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def shipped(path: Path) -> list[dict]:
    ref.require(path)
    return [json.loads(json.dumps(r)) for r in ref.records(path)]  # deep copies


def kinds(path: Path) -> list[str]:
    return sorted({r["kind"] for r in ref.records(path)}) if path.is_file() else []


@pytest.mark.parametrize("kind", kinds(ref.CONFIDENCE) or ["reference-file-missing"])
def test_confidence_file_without_a_kind(tmp_path: Path, kind: str) -> None:
    records = [r for r in shipped(ref.CONFIDENCE) if r["kind"] != kind]
    counts = check_confidence_file(write(tmp_path / "confidence.jsonl", records))
    assert sum(counts.values()) == len(records)
    assert {"cuped": counts["cuped"], "gst": counts["gst"]}.get(kind, 0) == 0


@pytest.mark.parametrize("kind", kinds(ref.GBSTATS) or ["reference-file-missing"])
def test_gbstats_file_without_a_kind(tmp_path: Path, kind: str) -> None:
    records = [r for r in shipped(ref.GBSTATS) if r["kind"] != kind]
    counts = check_gbstats_file(write(tmp_path / "gbstats.jsonl", records))
    assert counts["fixed"] + counts["sequential"] == counts["statuses"] == len(records)


def test_files_with_one_family_of_each_kind(tmp_path: Path) -> None:
    """A file of a single family (or case), for every kind the shipped files hold."""
    for path, check in ((ref.CONFIDENCE, check_confidence_file), (ref.GBSTATS, check_gbstats_file)):
        for kind in kinds(path):
            first = next(r for r in shipped(path) if r["kind"] == kind)
            counts = check(write(tmp_path / f"{kind}_{path.name}", [first]))
            assert max(counts.values()) == 1, (kind, counts)


def test_empty_files_check_nothing(tmp_path: Path) -> None:
    assert check_confidence_file(write(tmp_path / "confidence.jsonl", [])) == {"fixed": 0, "cuped": 0, "gst": 0}
    assert check_gbstats_file(write(tmp_path / "gbstats.jsonl", [])) == {"fixed": 0, "sequential": 0, "statuses": 0}


def shuffled(records: list[dict], seed: int) -> list[dict]:
    """Lines, each family's input and expected rows, in another order; ids renamed."""
    rng = random.Random(seed)
    records = list(records)
    rng.shuffle(records)
    for r in records:
        for field in ("input", "expected"):
            if isinstance(r.get(field), list):  # a gbstats case's `expected` is one record
                rng.shuffle(r[field])
        if "family_id" in r:
            r["family_id"] = f"renamed_{r['family_id'][::-1]}"
        else:
            r["case_id"] = f"renamed_{r['case_id'][::-1]}"
    return records


def test_reordered_and_renamed_files(tmp_path: Path) -> None:
    records = shuffled(shipped(ref.CONFIDENCE), seed=7)
    assert sum(check_confidence_file(write(tmp_path / "confidence.jsonl", records)).values()) == len(records)
    records = shuffled(shipped(ref.GBSTATS), seed=7)
    assert check_gbstats_file(write(tmp_path / "gbstats.jsonl", records))["statuses"] == len(records)


def test_gbstats_file_with_degenerate_cases(tmp_path: Path) -> None:
    """Cases where gbstats reports an error (e.g. ZERO_NEGATIVE_VARIANCE of a CUPED proportion) among ordinary
    ones, of every kind: the engine gives them a status and the ordinary cases still agree."""
    errors = shipped(ref.GBSTATS_ERRORS)
    assert {c["kind"] for c in errors} >= {"cuped_proportion", "sequential"} and all(c["expected"]["error"] for c in errors)
    ordinary = [c for c in shipped(ref.GBSTATS)][::7]
    records = errors + ordinary
    counts = check_gbstats_file(write(tmp_path / "gbstats.jsonl", records))
    assert counts["statuses"] == len(records)
    # a file of degenerate cases only
    assert check_gbstats_file(write(tmp_path / "errors.jsonl", errors))["statuses"] == len(errors)


def test_confidence_file_with_binary_cuped_families(tmp_path: Path) -> None:
    records = shipped(ref.CONFIDENCE) + shipped(ref.CONFIDENCE_BINARY_CUPED)
    counts = check_confidence_file(write(tmp_path / "confidence.jsonl", records))
    assert counts["cuped"] == len(ref.of_kind(ref.CONFIDENCE, "cuped")) + len(ref.records(ref.CONFIDENCE_BINARY_CUPED))


def without_guardrails(family: dict) -> dict | None:
    """A spot-1 family with its guardrail metrics (those with a margin) removed, or None when that would leave no
    metric or a binary success metric. Success rows keep every value but two (README): the adjusted power drops
    to the power (G = 0 guardrails), and the continuous powered effect, (z_{1-adjusted_alpha/2} + z_power) times
    a standard error, scales with z_power. The Bonferroni count has no guardrail in it, so nothing else moves."""
    guardrails = set(family["non_inferiority_margins"] or {})
    success = {m: t for m, t in family["metrics"].items() if m not in guardrails}
    if not guardrails or not success or "binary" in success.values():
        return None
    expected = []
    for e in family["expected"]:
        if e["metric"] in guardrails:
            continue
        q = special.ndtri(1.0 - e["adjusted_alpha"] / 2.0)
        factor = (q + special.ndtri(ref.POWER)) / (q + special.ndtri(e["adjusted_power"]))
        powered = None if e["powered_effect"] is None else e["powered_effect"] * factor
        expected.append({**e, "adjusted_power": ref.POWER, "powered_effect": powered})
    return {
        **family, "family_id": f"{family['family_id']}_no_guardrails", "metrics": success,
        "non_inferiority_margins": {}, "input": [r for r in family["input"] if r["metric"] not in guardrails],
        "expected": expected,
    }  # fmt: skip


def test_spot1_families_without_guardrails(tmp_path: Path) -> None:
    changed = [f for f in map(without_guardrails, ref.of_kind(ref.CONFIDENCE, "spot1") if ref.CONFIDENCE.is_file() else []) if f]
    if not changed:
        pytest.skip("no spot-1 family with guardrails and only continuous success metrics in this reference file")
    assert all(not f["non_inferiority_margins"] for f in changed)
    path = write(tmp_path / "spot1.jsonl", changed)
    assert check_confidence_file(path)["fixed"] == len(changed)
    # and beside the unchanged families
    path = write(tmp_path / "all.jsonl", shipped(ref.CONFIDENCE) + changed)
    assert check_confidence_file(path)["fixed"] == len(ref.of_kind(ref.CONFIDENCE, *confidence.KINDS)) + len(changed)


@pytest.mark.parametrize(
    ("mutate", "check"),
    [
        pytest.param(lambda f: f["expected"][0].update(p_value=f["expected"][0]["p_value"] * 1.01), check_confidence_file,
                     id="confidence-p-value"),
        pytest.param(lambda c: c["expected"].update(error="ZERO_NEGATIVE_VARIANCE"), check_gbstats_file,
                     id="gbstats-error-flag"),
    ],
)  # fmt: skip
def test_a_wrong_value_fails(tmp_path: Path, mutate: Callable[[dict], None], check: Callable[[Path], dict]) -> None:
    """The checks run on a copy do check: one changed value fails them."""
    source = ref.CONFIDENCE if check is check_confidence_file else ref.GBSTATS
    records = shipped(source)[:1]
    mutate(records[0])
    with pytest.raises(AssertionError):
        check(write(tmp_path / "changed.jsonl", records))
