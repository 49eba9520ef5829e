"""The API process stays light: importing and building it loads no torch."""

import subprocess
import sys

PROGRAM = """
import sys
from service.app import create_app
from service.cli import app
from service.launcher import run_stack
create_app()
heavy = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
assert not heavy, heavy
"""


def test_api_process_does_not_import_torch() -> None:
    completed = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
