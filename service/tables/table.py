"""One tidy table: named columns of equal length."""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Table:
    """Columns by name, in order, all of one length: row i is the i-th value of each column."""

    columns: dict[str, list[Any]]

    @classmethod
    def of(cls, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> "Table":
        """The table of `rows` under `header` (every row as long as the header)."""
        columns: dict[str, list[Any]] = {name: [] for name in header}
        for row in rows:
            if len(row) != len(header):
                raise ValueError(f"a row of {len(row)} values under {len(header)} columns")
            for values, value in zip(columns.values(), row, strict=True):
                values.append(value)
        return cls(columns)

    @property
    def header(self) -> list[str]:
        return list(self.columns)

    def rows(self) -> Iterator[list[Any]]:
        return (list(row) for row in zip(*self.columns.values(), strict=True))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))


def run_names(names: Sequence[str]) -> list[str]:
    """How rows name a run: its optimizer, told apart by its index when named twice (`gd[2]`)."""
    return [name if names.count(name) == 1 else f"{name}[{index}]" for index, name in enumerate(names)]
