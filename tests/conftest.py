"""Shared fixtures: a tiny random BERT folder, the demo data, and the shared CS224N data when present."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.demo import ensure_demo_data
from core.tiny import write_tiny_encoder

torch.set_num_threads(1)  # tiny models gain nothing from threads; subprocess tests run beside pytest
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def one_thread():
    """Training sets the thread count its config gives; put one thread back after every test (tiny models run
    fastest on one, and two OpenMP threads on a busy 2-core box wait on each other)."""
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def demo_data() -> Path:
    return ensure_demo_data()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "ids-sst-dev.csv").is_file():
        pytest.skip("the shared CS224N data folder is not next to this checkout")
    return SHARED_DATA


@pytest.fixture
def notes(monkeypatch) -> list[str]:
    """The messages of the app's notifications (from any screen), recorded."""
    from walkless_tui.app import WalklessApp

    seen: list[str] = []
    original = WalklessApp.notify

    def notify(self, message, *args, **kwargs):
        seen.append(str(message))
        return original(self, message, *args, **kwargs)

    monkeypatch.setattr(WalklessApp, "notify", notify)
    return seen


def pytest_addoption(parser):
    parser.addoption("--snapshot-update", action="store_true", help="rewrite the app's text snapshots")
