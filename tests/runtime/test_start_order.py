"""The warm start's order (``instrument run``): the host starts the audio process before it
imports numba, so the two processes' imports overlap (the audio process then fills numba's
registries while the host compiles the preset). Pinned here because any numba-importing module
added to the host's imports silently costs 0.2 s of every start."""

import subprocess
import sys

from live import REPO


def test_the_host_module_imports_no_numba():
    code = ("import sys, instrument.runtime.host; "
            "print(sorted(m for m in sys.modules if m == 'numba' or m.startswith('numba.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
