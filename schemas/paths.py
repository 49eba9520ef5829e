"""Paths into JSON documents: `optimizers[name=gd].runs[-1].fit.verdict`.

A path is dotted keys with list selectors: `[i]` indexes a list (negative from the end),
`[key=value]` takes the first item whose `key` reads `value`, and `[*]` takes every item (the
rest of the path is read in each, giving a list). Check suites read result fields
with `resolve`; sweeps read their metrics the same way and set their axes in a spec with
`assign`. Pure Python, so every layer can use it.
"""

import copy
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

TOKEN = re.compile(r"(?P<dot>\.)?(?P<key>[^.\[\]]+)|\[(?P<selector>[^\]]*)\]")
INDEX = re.compile(r"-?\d+")


def is_number(value: Any) -> bool:
    """An int or float read from a document (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class PathError(ValueError):
    """A path that does not parse, or names nothing in the document."""


def text(value: Any) -> str:
    """A value as a path selector or a table writes it (JSON spelling for true/false/null)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class Step(ABC):
    """One step of a path: into an object by a field name (`Key`), or into a list (`Selector`)."""

    container: ClassVar[type] = list

    def apply(self, value: Any, where: str) -> Any:
        """What the step names inside `value` (found at `where`); PathError if nothing."""
        if not isinstance(value, self.container):
            shape = "an object" if self.container is dict else "a list"
            raise PathError(f"{where} is not {shape}, it has no {self.wanted}")
        return self.pick(value, where)

    @property
    @abstractmethod
    def wanted(self) -> str:
        """What the step looks for, in words."""

    @abstractmethod
    def pick(self, value: Any, where: str) -> Any:
        """What the step names inside a value of the right type."""

    @abstractmethod
    def spell(self, where: str) -> str:
        """The path so far, this step included."""


class Selector(Step):
    """A step into a list, written `[selector]`."""

    @property
    @abstractmethod
    def selector(self) -> str:
        """What stands between the brackets."""

    @property
    def wanted(self) -> str:
        return f"item [{self.selector}]"

    def spell(self, where: str) -> str:
        return f"{where}[{self.selector}]"


@dataclass(frozen=True)
class Key(Step):
    name: str
    container: ClassVar[type] = dict

    @property
    def wanted(self) -> str:
        return f"field {self.name!r}"

    def pick(self, value: dict[str, Any], where: str) -> Any:
        if self.name not in value:
            raise PathError(f"{where} has no field {self.name!r} (fields: {', '.join(map(str, value))})")
        return value[self.name]

    def spell(self, where: str) -> str:
        return f"{where}.{self.name}" if where else self.name


@dataclass(frozen=True)
class Index(Selector):
    index: int

    @property
    def selector(self) -> str:
        return str(self.index)

    def pick(self, value: list[Any], where: str) -> Any:
        if not -len(value) <= self.index < len(value):
            raise PathError(f"{where} has {len(value)} items, no [{self.index}]")
        return value[self.index]


@dataclass(frozen=True)
class Match(Selector):
    key: str
    value: str

    @property
    def selector(self) -> str:
        return f"{self.key}={self.value}"

    def matches(self, item: Any) -> bool:
        return isinstance(item, dict) and self.key in item and text(item[self.key]) == self.value

    def pick(self, value: list[Any], where: str) -> Any:
        for item in value:
            if self.matches(item):
                return item
        have = ", ".join(text(item.get(self.key)) for item in value if isinstance(item, dict))
        raise PathError(f"{where} has no item with {self.selector} ({self.key}: {have or 'none'})")


class Every(Selector):
    """`[*]`: every item of a list (resolve reads the rest of the path in each)."""

    @property
    def selector(self) -> str:
        return "*"

    def pick(self, value: list[Any], where: str) -> Any:
        return value


def parse_path(path: str) -> list[Step]:
    """The steps of a path such as `optimizers[name=gd].runs[-1].fit.verdict`."""
    steps: list[Step] = []
    position = 0
    while position < len(path):
        token = TOKEN.match(path, position)
        if token is None or (token["key"] is not None and bool(token["dot"]) != (position > 0)):
            raise PathError(f"cannot read path {path!r} from {path[position:]!r}")
        steps.append(_step(token, path))
        position = token.end()
    if not steps:
        raise PathError("the path is empty")
    return steps


def _step(token: re.Match[str], path: str) -> Step:
    if token["key"] is not None:
        return Key(token["key"])
    selector = token["selector"].strip()
    if selector == "*":
        return Every()
    if INDEX.fullmatch(selector):
        return Index(int(selector))
    key, equals, value = selector.partition("=")
    if not equals or not key.strip():
        raise PathError(f"in {path!r}: [{selector}] is neither an index nor key=value")
    return Match(key.strip(), value.strip())


def resolve(document: Any, path: str) -> Any:
    """The value at `path` in `document` (a list of values after a `[*]`); PathError says where
    the path stopped matching."""
    return _walk(document, parse_path(path), "")


def _walk(value: Any, steps: list[Step], where: str) -> Any:
    for number, step in enumerate(steps):
        value = step.apply(value, where or "the result")
        where = step.spell(where)
        if isinstance(step, Every):
            return [_walk(item, steps[number + 1 :], f"{where[:-3]}[{i}]") for i, item in enumerate(value)]
    return value


def assign(document: Any, path: str, value: Any) -> Any:
    """A deep copy of `document` with `value` at `path`: every step but the last must name
    something; the last may add a key to an object (a field left at its default)."""
    steps = parse_path(path)
    if any(isinstance(step, Every) for step in steps):
        raise PathError(f"{path!r}: [*] reads many values, it cannot set one")
    copied = copy.deepcopy(document)
    parent, where = copied, ""
    for step in steps[:-1]:
        parent = step.apply(parent, where or "the document")
        where = step.spell(where)
    last = steps[-1]
    if isinstance(last, Key) and isinstance(parent, dict):
        parent[last.name] = value
        return copied
    last.apply(parent, where or "the document")  # raises PathError where the path stops
    position = (
        last.index
        if isinstance(last, Index)
        else next(i for i, item in enumerate(parent) if isinstance(last, Match) and last.matches(item))
    )
    parent[position] = value
    return copied
