"""Results for notebooks: a result table as a pandas DataFrame, its arrays as NumPy arrays. Both
come from the server's files (Parquet, npz), so the client needs only the `notebook` extra."""

import importlib
import io
from types import ModuleType
from typing import Any


def extra(module: str, name: str) -> ModuleType:
    """Import an optional dependency; ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is not installed: pip install 'ntkdyn[{name}]'") from None


def frame(parquet: bytes) -> Any:
    """The pandas DataFrame of a Parquet file."""
    return extra("pandas", "notebook").read_parquet(io.BytesIO(parquet))


def arrays(npz: bytes) -> dict[str, Any]:
    """The NumPy arrays of an npz file, by name (no pickled objects are accepted)."""
    with extra("numpy", "notebook").load(io.BytesIO(npz), allow_pickle=False) as loaded:
        return {name: loaded[name] for name in loaded.files}
