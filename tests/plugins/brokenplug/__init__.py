"""A third-party module package for the registry tests: one good module and one of each way a
plugin can be broken. Each class is registered under its own ``instrument.modules`` entry point
by the tests (see ``tests/modules/test_registry.py``), which copy this folder into a temporary
"installed" location next to a ``brokenplug-0.1.dist-info``.

Written for the tests, not taken from a real plugin; each broken kind is a mistake a plugin
author can plausibly make.
"""

import numpy as np
from numba import njit

from instrument.modules.base import Module, Port
from instrument.params import ParamSpec


# -- good ------------------------------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def invert_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """out = -in * trim: with trim 1 the output is the exact negation of the input."""
    x = bufs[io[0]]
    out = bufs[io[1]]
    trim = P[pr[0]]
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = -x[i, v] * trim[i, v]


class Invert(Module):
    """Polarity inverter with a trim: out = -in * trim (trim 1: exact negation)."""

    type_name = "plug_invert"
    label = "Invert"
    doc = "Polarity inverter with a linear trim (third-party test plugin)."
    scope = "any"
    params = (ParamSpec("trim", "Trim", "", 0.0, 2.0, 1.0, doc="Linear gain after inversion."),)
    inputs = (Port("in"),)
    outputs = ("out",)
    kernel = invert_kernel


# -- broken: declarations ----------------------------------------------------------------------

class NotAModule:
    """Looks like a module but does not derive from instrument.modules.base.Module."""

    type_name = "plug_not_a_module"
    label = "Not a module"
    params = ()
    inputs = (Port("in"),)
    outputs = ("out",)
    kernel = invert_kernel


class BadDefault(Module):
    """A parameter whose default (5) is outside its range (0..1)."""

    type_name = "plug_bad_default"
    label = "Bad default"
    params = (ParamSpec("depth", "Depth", "", 0.0, 1.0, 5.0),)
    inputs = (Port("in"),)
    outputs = ("out",)
    kernel = invert_kernel


class DuplicatePorts(Module):
    """Two inputs called 'in'."""

    type_name = "plug_duplicate_ports"
    label = "Duplicate ports"
    params = (ParamSpec("trim", "Trim", "", 0.0, 2.0, 1.0),)
    inputs = (Port("in"), Port("in"))
    outputs = ("out",)
    kernel = invert_kernel


# -- broken: kernels -------------------------------------------------------------------------

@njit(cache=True)
def raising_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    if s1 > s0:
        raise ValueError("plug_raises: lookup table missing")


class Raises(Module):
    """A kernel that raises at run time."""

    type_name = "plug_raises"
    label = "Raises"
    inputs = (Port("in"),)
    outputs = ("out",)
    kernel = raising_kernel


@njit
def no_compile_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    out = bufs[io[1]]
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = undefined_helper_function(i)  # noqa: F821  (the bug under test)


class NoCompile(Module):
    """A kernel numba cannot compile (it calls a name that does not exist)."""

    type_name = "plug_no_compile"
    label = "No compile"
    inputs = (Port("in"),)
    outputs = ("out",)
    kernel = no_compile_kernel


@njit(cache=True, error_model="numpy")
def nan_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """0/0 with the default 'amount' of 0: NaN."""
    x = bufs[io[0]]
    out = bufs[io[1]]
    amount = P[pr[0]]
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = x[i, v] * amount[i, v] / amount[i, v]


class NanOutput(Module):
    """Output is NaN with the default parameters."""

    type_name = "plug_nan"
    label = "NaN"
    params = (ParamSpec("amount", "Amount", "", 0.0, 1.0, 0.0),)
    inputs = (Port("in"),)
    outputs = ("out",)
    kernel = nan_kernel


@njit(cache=True)
def allocating_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Allocates a scratch array every call (the result is used, so LLVM cannot drop it)."""
    x = bufs[io[0]]
    out = bufs[io[1]]
    for v in range(nl):
        scratch = np.zeros(4)
        for i in range(s0, s1):
            scratch[i % 4] = x[i, v]
            out[i, v] = 0.5 * (scratch[0] + scratch[3])


class Allocates(Module):
    """A kernel that allocates a numpy array on every call."""

    type_name = "plug_allocates"
    label = "Allocates"
    inputs = (Port("in"),)
    outputs = ("out",)
    kernel = allocating_kernel


class TakesSaw(Module):
    """A good module that claims a built-in's type name."""

    type_name = "saw"
    label = "Fake saw"
    doc = "A plugin that tries to replace the built-in saw."
    scope = "voice"
    inputs = (Port("in"),)
    outputs = ("out",)
    params = (ParamSpec("trim", "Trim", "", 0.0, 2.0, 1.0),)
    kernel = invert_kernel
