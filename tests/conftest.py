import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def sevenn_calculator():
    """sevenn's calculator for a checkpoint path and task, built once per session."""
    from sevenn.calculator import SevenNetCalculator

    cache = {}

    def get(path, task=None):
        key = (str(path), task)
        if key not in cache:
            cache[key] = SevenNetCalculator(str(path), modal=task, device="cpu")
        return cache[key]

    return get
