#!/usr/bin/env bash
# Set up (./setup.sh --test) and run the whole test suite. Extra arguments go to pytest,
# e.g. ./test.sh -k jack -x. Exit code is pytest's; "no tests collected" (5) counts as failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

./setup.sh --test

rc=0
.venv/bin/python -m pytest -q "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure" >&2
fi
exit "$rc"
