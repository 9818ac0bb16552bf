"""Running the real ``ragqa`` command line from end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_ragqa(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m ragqa.cli ARGS`` in the repository, its output captured."""
    # The developer's RAGQA_* settings must not change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    return subprocess.run(
        [sys.executable, "-m", "ragqa.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
