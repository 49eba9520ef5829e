"""Safe at rest: the data folder (store, broker's append-only file, logs, the first admin token)
is readable by its owner only, folder 0700 and files 0600."""

import os
from pathlib import Path

PRIVATE_UMASK = 0o077
"""Files and folders the stack creates get no group or other permissions."""


def private_folder(path: Path) -> Path:
    """Create `path` if needed and make it 0700 (also when it existed with looser modes)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file that is 0600 from the moment it exists."""
    private_folder(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    path.chmod(0o600)


def tighten(folder: Path) -> None:
    """Make `folder` private and every file and folder below it owner-only (0600 / 0700), for
    data folders written by earlier versions with looser modes; links are left alone."""
    private_folder(folder)
    for path in folder.rglob("*"):
        if path.is_symlink() or path.is_socket():
            continue
        path.chmod(0o700 if path.is_dir() else 0o600)
