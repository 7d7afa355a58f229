"""instrument: a headless MIDI- and OSC-driven software synthesizer."""

from instrument.cache_folder import use_numba_cache_for_this_code

__version__ = "0.1.0"

use_numba_cache_for_this_code()  # before anything imports numba: see cache_folder.py
