"""Which token a client sends when none is given: `NTKDYN_TOKEN`, else the first admin token that
`ntkdyn run` wrote into its data folder (`NTKDYN_DATA_DIR`, `./.ntkdyn` by default), so that the
two README commands need no token handling on one machine."""

import os
from pathlib import Path

TOKEN_FILE = "admin.token"


def default_token() -> str | None:
    """NTKDYN_TOKEN, or the data folder's admin token when that file exists and is readable."""
    if token := os.environ.get("NTKDYN_TOKEN"):
        return token
    path = Path(os.environ.get("NTKDYN_DATA_DIR", ".ntkdyn")) / TOKEN_FILE
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
