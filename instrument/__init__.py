"""instrument: a headless MIDI- and OSC-driven software synthesizer."""

__version__ = "0.1.0"
