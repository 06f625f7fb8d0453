"""Named choices and described options: the one place the CLI, the config checks and the web
form read their names, labels, choices and bounds from.

* :class:`Registry` maps a name to an entry (a function with its label and flags). A method
  registers itself with a decorator beside its code (``vocab.init_method``); argparse's
  ``choices``, a config's check and a web form's select all read the registry.
* :func:`option` is a ``dataclasses.field`` whose metadata (:class:`Option`) holds a label,
  bounds and choices. :func:`options` resolves them with each field's type and default,
  :func:`check` validates a config against them, :func:`add_arguments` builds argparse
  options from them; the web form builds its fields from :func:`options` the same way
  (``sbs/catalog/forms.py``).

Labels are English. Those a web page shows are marked with :func:`gettext_noop` so that
``makemessages`` extracts them; the web side translates them when it renders. This module
imports no Django.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, Union, get_args, get_origin, get_type_hints

Choices = Sequence[tuple[str, str]]  # (value, label)


def gettext_noop(message: str) -> str:
    """Marks ``message`` for translation (``makemessages`` knows this name); returns it as is."""
    return message


class Labelled(Protocol):
    @property
    def label(self) -> str: ...


E = TypeVar("E", bound=Labelled)


class Registry(dict[str, E]):
    """Entries by name, in registration order."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def add(self, name: str, entry: E) -> E:
        if name in self:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self[name] = entry
        return entry

    def lookup(self, name: str) -> E:
        """The entry, or a ValueError that names the registered ones."""
        try:
            return self[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"{self.what} must be one of {', '.join(self)}, not {name!r}"
            ) from None

    def names(self, where: Callable[[E], bool] | None = None) -> tuple[str, ...]:
        return tuple(name for name, entry in self.items() if where is None or where(entry))

    def choices(self, where: Callable[[E], bool] | None = None) -> list[tuple[str, str]]:
        return [(name, self[name].label) for name in self.names(where)]


@dataclass(frozen=True)
class Option:
    """What a config field means to a person: label, help, bounds (inclusive), choices."""

    label: str
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: Callable[[], Choices] | Choices | None = None  # a callable is read on every use
    web: bool = True  # offered on the web form (the CLI offers every option)
    parse: Callable[[str], Any] | None = None  # CLI text -> value; default: the field's type

    def choice_list(self) -> list[tuple[str, str]] | None:
        if self.choices is None:
            return None
        return list(self.choices() if callable(self.choices) else self.choices)


def option(default: Any, *, label: str, **described: Any) -> Any:
    """A dataclass field with ``default`` and an :class:`Option` in its metadata."""
    return dataclasses.field(default=default, metadata={"option": Option(label, **described)})


@dataclass(frozen=True)
class Spec:
    """One described field, resolved: its name, its plain type (of each item when ``many``:
    a ``tuple[float, ...]``), its default, and whether None is allowed."""

    name: str
    type: type
    default: Any
    optional: bool
    many: bool
    option: Option

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _plain_type(hint: Any) -> tuple[type, bool, bool]:
    """(type, optional, many) of ``int``, ``float | None``, ``Literal["a", "b"]``,
    ``tuple[float, ...]``."""
    optional = many = False
    if get_origin(hint) in (Union, types.UnionType):
        rest = [arg for arg in get_args(hint) if arg is not type(None)]
        optional = len(rest) < len(get_args(hint))
        hint = rest[0]
    if get_origin(hint) in (tuple, list):
        many, hint = True, get_args(hint)[0]
    if get_origin(hint) is Literal:
        hint = type(get_args(hint)[0])
    if not isinstance(hint, type):
        raise TypeError(f"no plain type for {hint!r}")
    return hint, optional, many


def options(config_class: type) -> list[Spec]:
    """The described fields of a config dataclass, in declaration order."""
    hints = get_type_hints(config_class)
    out = []
    for f in dataclasses.fields(config_class):
        described = f.metadata.get("option")
        if described is None:
            continue
        kind, optional, many = _plain_type(hints[f.name])
        out.append(Spec(f.name, kind, f.default, optional, many, described))
    return out


KIND_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _is(item: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(item, (int, float)) and not isinstance(item, bool)
    if kind is int:
        return isinstance(item, int) and not isinstance(item, bool)
    return isinstance(item, kind)


def check(config: Any) -> None:
    """Refuse a value of a described field that is missing, of the wrong kind, not among its
    choices or out of its bounds; the ValueError names the field."""
    for spec in options(type(config)):
        value = getattr(config, spec.name)
        if value is None:
            if spec.optional:
                continue
            raise ValueError(f"{spec.name} is required")
        if spec.many and not isinstance(value, (tuple, list)):
            raise ValueError(f"{spec.name} must be a list, not {value!r}")
        names = spec.option.choice_list()
        for item in value if spec.many else (value,):
            if not _is(item, spec.type):
                kind = KIND_NAMES.get(spec.type, spec.type.__name__)
                raise ValueError(f"{spec.name} must be {kind}, not {item!r}")
            if names is not None and item not in [name for name, _label in names]:
                allowed = ", ".join(name for name, _label in names)
                raise ValueError(f"{spec.name} must be one of {allowed}, not {item!r}")
            low, high = spec.option.min, spec.option.max
            if low is not None and item < low:
                raise ValueError(f"{spec.name} must be at least {low:g}, not {item!r}")
            if high is not None and item > high:
                raise ValueError(f"{spec.name} must be at most {high:g}, not {item!r}")


def _bounds(low: float | None, high: float | None) -> str:
    def number(value: float) -> str:
        return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"

    if low is not None and high is not None:
        return f"from {number(low)} to {number(high)}"
    if low is not None:
        return f"at least {number(low)}"
    return f"at most {number(high)}" if high is not None else ""


def add_arguments(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One ``--field-name`` option per described field, with its type, choices, default."""
    for spec in options(config_class):
        described = spec.option
        names = described.choice_list()
        parts = [described.label, described.help, _bounds(described.min, described.max)]
        if names is not None:
            parts += [f"{name}: {label}" for name, label in names if label.lower() != name.lower()]
        text = "; ".join(part for part in parts if part)
        kwargs: dict[str, Any] = {
            "dest": spec.name,
            "default": spec.default,
            "help": text.replace("%", "%%") + " (default: %(default)s)",
        }
        if spec.type is bool and not spec.many:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = described.parse or spec.type
            if spec.many and described.parse is None:
                kwargs["nargs"] = "+"
            if names is not None:
                kwargs["choices"] = [name for name, _label in names]
        parser.add_argument(spec.flag, **kwargs)


def from_arguments(config_class: type, args: argparse.Namespace) -> Any:
    """The config whose described fields are the parsed options of :func:`add_arguments`."""
    values = {spec.name: getattr(args, spec.name) for spec in options(config_class)}
    for spec in options(config_class):
        if spec.many and values[spec.name] is not None:
            values[spec.name] = tuple(values[spec.name])
    return config_class(**values)
