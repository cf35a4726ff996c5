import sys
from pathlib import Path

import pytest
import torch

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


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """An empty models folder, so only the sevenn wheel's checkpoints are found."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("SEVENOMNI_MODEL_DIR", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return folder


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: tiny graphs gain nothing from more, and on a loaded
    2-core machine two OpenMP threads make each evaluation ~100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
