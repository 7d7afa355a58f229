"""``instrument run --config FILE``: every ``run`` option from a TOML file.

The keys are the ``run`` options' long names with underscores (``osc_port = 9000``,
``no_midi = true``, ``osc_send = ["192.168.1.20:9001"]``) plus ``preset`` for the positional
preset. They are derived from the argparse parser, so an option added there is a key here
without any change to this file. A ``no_X`` switch may also be written as ``X = true|false``
when ``X`` is not an option of its own (``zeroconf = false`` is ``no_zeroconf = true``).

Options given on the command line win over the file. Relative paths are taken from the working
directory, as on the command line (``/opt/instrument`` for the systemd unit). Any mistake (an
unknown key, a wrong type, a value outside the choices) is one ``InstrumentError`` line naming
the file, the key and the fix.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from instrument.errors import InstrumentError
from instrument.names import nearest
from instrument.tomlfile import parse_toml, read_text

SKIP_DESTS = {"help", "config"}
_UNSET = object()


class ConfigError(InstrumentError):
    """A run configuration file that cannot be used."""


@dataclass(frozen=True)
class Key:
    """One configuration key: the parser action it sets, and whether it is an inverted alias."""

    name: str
    action: argparse.Action
    inverted: bool = False  # 'zeroconf' for the switch --no-zeroconf


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The subcommand's parser inside the top-level ``instrument`` parser."""
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise LookupError(command)


def _is_switch(action: argparse.Action) -> bool:
    return isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))


def config_keys(run_parser: argparse.ArgumentParser) -> dict[str, Key]:
    """Every key a configuration file may hold, by name, from the parser's options."""
    keys: dict[str, Key] = {}
    for action in run_parser._actions:
        if action.dest in SKIP_DESTS or action.dest == argparse.SUPPRESS:
            continue
        keys[action.dest] = Key(action.dest, action)
    for name, key in list(keys.items()):
        positive = name[3:]
        if name.startswith("no_") and _is_switch(key.action) and positive not in keys:
            keys[positive] = Key(positive, key.action, inverted=True)
    return keys


def _kind(action: argparse.Action) -> str:
    if _is_switch(action):
        return "true or false"
    if action.type is int:
        return "a whole number"
    if action.type is float:
        return "a number"
    return "a string"


def _example(key: Key) -> str:
    action = key.action
    if _is_switch(action):
        return f"{key.name} = true"
    default = action.default
    if isinstance(action, argparse._AppendAction):
        sample = action.metavar or "VALUE"
        return f'{key.name} = ["{sample}"]'
    if action.choices:
        return f'{key.name} = "{sorted(action.choices)[0]}"'
    if action.type in (int, float):
        return f"{key.name} = {default if default is not None else 1}"
    return f'{key.name} = "{default if default is not None else "..."}"'


def _one_value(key: Key, value, where: str):
    """``value`` as argparse would have made it from the command line, or ConfigError."""
    action = key.action
    wrong = ConfigError(f"{value!r} is not {_kind(action)}", where,
                        f"write it like {_example(key)}")
    if _is_switch(action):
        if not isinstance(value, bool):
            raise wrong
        stored = action.const if value else action.default
        return (not stored) if key.inverted else stored
    if isinstance(value, bool):
        raise wrong
    if action.type is int:
        if not isinstance(value, int):
            raise wrong
    elif action.type is float:
        if not isinstance(value, (int, float)):
            raise wrong
        value = float(value)
    elif action.type is None or action.type is str:
        if isinstance(value, (int, float)):  # device = 2, latency = 0.005
            value = str(value)
        elif not isinstance(value, str):
            raise wrong
    else:  # a converter function: give it the text, as argparse does
        try:
            value = action.type(str(value))
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            raise wrong from None
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{value!r} is not one of {', '.join(map(str, action.choices))}",
                          where, nearest(str(value), map(str, action.choices)))
    return value


def _value(key: Key, value, where: str):
    if isinstance(key.action, argparse._AppendAction):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # osc_send = "host:9001" for one target
        if not isinstance(value, list):
            raise ConfigError(f"{value!r} is not a list", where,
                              f"write it like {_example(key)}")
        return [_one_value(key, item, f"{where}[{i}]") for i, item in enumerate(value)]
    return _one_value(key, value, where)


def read_run_config(path, run_parser: argparse.ArgumentParser) -> dict:
    """The file's settings as ``{dest: value}``, values typed as the parser would make them."""
    source = str(path)
    data = parse_toml(read_text(Path(path), ConfigError, "run configuration"), source,
                      ConfigError)
    keys = config_keys(run_parser)
    values: dict = {}
    seen: dict[str, str] = {}
    for name, raw in data.items():
        where = f"{source}: {name}"
        key = keys.get(name)
        if key is None:
            hint = "a [table] is not used here; the keys go at the top level, " if isinstance(
                raw, dict) else ""
            raise ConfigError("unknown key", where, hint + nearest(name, keys))
        dest = key.action.dest
        if dest in seen:
            raise ConfigError(f"sets the same option as '{seen[dest]}'", where,
                              "keep one of the two")
        seen[dest] = name
        values[dest] = _value(key, raw, where)
    return values


def explicit_dests(parser: argparse.ArgumentParser, argv) -> set[str]:
    """The ``run`` options that ``argv`` gives explicitly (not left at their defaults)."""
    run_parser = subparser(parser, "run")
    saved = [(action, action.default) for action in run_parser._actions]
    appends = set()  # argparse appends to the default: None there ('given' is then a list)
    try:
        for action, _ in saved:
            if action.dest not in SKIP_DESTS:
                if isinstance(action, argparse._AppendAction):
                    appends.add(action.dest)
                    action.default = None
                else:
                    action.default = _UNSET
        namespace = parser.parse_args(argv)
    finally:
        for action, default in saved:
            action.default = default
    return {dest for dest, value in vars(namespace).items()
            if value is not _UNSET and not (dest in appends and value is None)}


def apply_run_config(args: argparse.Namespace, parser: argparse.ArgumentParser, argv) -> None:
    """Fill ``args`` (parsed ``run`` arguments) from ``args.config``; the command line wins."""
    run_parser = subparser(parser, "run")
    values = read_run_config(args.config, run_parser)
    given = explicit_dests(parser, argv)
    for dest, value in values.items():
        if dest not in given:
            setattr(args, dest, value)
