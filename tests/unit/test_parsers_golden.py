"""Every golden capture parses, and parses to the reviewed expectation beside it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
import parse_golden

CASES = parse_golden.cases()


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 1


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case_matches_expected_parse(case: Path) -> None:
    parsed = parse_golden.parse_case(case)
    assert parsed, f"{case} holds no probe output"
    for probe, value in parsed.items():
        expected_file = case / f"{probe}.parsed.json"
        assert expected_file.exists(), (
            f"{expected_file} missing: run python tests/golden/parse_golden.py --write and "
            "review the diff"
        )
        expected = json.loads(expected_file.read_text())
        assert json.loads(json.dumps(value, sort_keys=True)) == expected, f"{case.name}/{probe}"
