"""The compiled plan prints as readable text; these golden files pin it (ordering, buffer reuse,
fan-in sums, parameter modulation rows, state sizes). After an intended change, regenerate with
UPDATE_GOLDEN=1 and read the diff."""

import os

import pytest

from instrument.presets import compile_file
from live import REPO, TESTS

ROOT = REPO
GOLDEN = TESTS / "golden"


@pytest.mark.parametrize("name", ["poly16", "init"])
def test_plan_text_matches_golden_file(name):
    text = str(compile_file(ROOT / "presets" / f"{name}.toml", 48000, 64)) + "\n"
    golden = GOLDEN / f"{name}.plan.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_buffer_rows_are_reused_after_their_last_reader():
    """poly16 has 9 voice ops but needs only 5 working rows (b10..b14): osc1's row is reused
    by the amp envelope once the sum has read it; in init, unread controller outputs go to the
    sink row."""
    text = str(compile_file(ROOT / "presets" / "poly16.toml", 48000, 64))
    assert "voice: 15 rows (10 reserved)" in text
    assert "saw          osc1     in(pitch=pitch) out(out=b10 sync=-)" in text
    assert "aenv     in(gate=gate trigger=trigger) out(out=b10)" in text
    init = str(compile_file(ROOT / "presets" / "init.toml", 48000, 64))
    assert "out(velocity=- key=- mod_wheel=b10 pressure=-)" in init
