from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

import memollm
from memollm import config
from memollm.backends import MemoryBackend
from memollm.testing import FakeClock


@pytest.fixture(autouse=True)
def _isolated_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Every test starts with no config file, no MEMOLLM_* variables and a fresh memory tier."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    for name in list(os.environ):
        if name.startswith("MEMOLLM_"):
            monkeypatch.delenv(name)
    config.reset()
    yield
    config.reset()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory(clock: FakeClock) -> MemoryBackend:
    """A memory tier on the fake clock, registered as the default "memory" tier."""
    backend = MemoryBackend(clock=clock)
    memollm.register_tier("memory", backend)
    return backend


@pytest.fixture
def warnings_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="memollm")
    return caplog
