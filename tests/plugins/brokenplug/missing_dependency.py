"""A plugin module whose import fails: it needs a library that is not installed."""

import instrument_plugin_dependency_that_is_not_installed  # noqa: F401

from brokenplug import Invert as NeverReached  # noqa: E402,F401
