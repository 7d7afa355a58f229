"""The generated renderer's dispatch (``engine.fused.generate_source``: the head put before
``render_template.py``) for the built-in modules, pinned by a golden file: which kernel each op
code runs, imported from where, with which arguments. After an intended change (a module
added, a kernel moved or renamed), regenerate with UPDATE_GOLDEN=1 and read the diff."""

import os

from instrument.engine.fused import _TEMPLATE, generate_source
from instrument.modules.registry import default_registry
from live import TESTS

GOLDEN = TESTS / "golden" / "fused_dispatch.py.txt"


def _builtin_dispatch() -> tuple[str, dict[str, int]]:
    builtin = [cls for cls in default_registry().modules.values()
               if cls.__module__.startswith("instrument.")]
    source, codes = generate_source(builtin)
    template = _TEMPLATE.read_text()
    assert source.endswith(template)  # the template follows the dispatch verbatim
    return source[:-len(template)], codes


def test_generated_dispatch_matches_golden_file():
    head, _ = _builtin_dispatch()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(head)
    assert head == GOLDEN.read_text()


def test_op_codes_follow_type_names_after_the_two_builtin_ops():
    _, codes = _builtin_dispatch()
    names = sorted(codes)
    assert [codes[n] for n in names] == list(range(2, 2 + len(names)))
    assert {"saw", "svf", "svf_lowpass", "ladder", "reverb"} <= set(codes)
