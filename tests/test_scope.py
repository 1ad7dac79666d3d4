"""Library calls leave the process as they found it: environment, torch settings, random
streams, warning filters and Lightning's log levels come back after the call."""

from __future__ import annotations

import logging
import os
import random
import warnings

import numpy as np
import pytest
import torch

from modalens.scope import restored_environ, restored_torch, scoped_process
from modalens.training.callbacks import LIGHTNING_LOGGERS, QuietLightning, quiet_lightning


def test_the_environment_comes_back_but_a_distributed_launch_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODALENS_TEST_CHANGED", "before")
    monkeypatch.setenv("MODALENS_TEST_REMOVED", "kept")
    monkeypatch.delenv("MODALENS_TEST_ADDED", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    before = dict(os.environ)
    with restored_environ():
        os.environ["MODALENS_TEST_CHANGED"] = "during"
        del os.environ["MODALENS_TEST_REMOVED"]
        os.environ["MODALENS_TEST_ADDED"] = "1"
        os.environ["MASTER_PORT"] = "12345"  # the process joined a process group
    assert os.environ.pop("MASTER_PORT") == "12345"
    assert dict(os.environ) == before


def test_torch_settings_and_random_streams_come_back() -> None:
    threads = torch.get_num_threads()
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    want = random.random(), float(np.random.rand()), torch.rand(2).tolist()
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    try:
        with restored_torch():
            torch.set_num_threads(threads + 1)
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = True
            random.seed(0), np.random.seed(0), torch.manual_seed(0)
            torch.rand(5)
        assert torch.get_num_threads() == threads
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark is False
        assert (random.random(), float(np.random.rand()), torch.rand(2).tolist()) == want
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = False


def test_a_call_that_raises_restores_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODALENS_TEST_ADDED", raising=False)
    filters = list(warnings.filters)
    with pytest.raises(KeyError), scoped_process():
        warnings.simplefilter("ignore")
        os.environ["MODALENS_TEST_ADDED"] = "1"
        raise KeyError("stop")
    assert warnings.filters == filters
    assert "MODALENS_TEST_ADDED" not in os.environ


def _shown(message: str) -> bool:
    """Whether a UserWarning with ``message`` reaches the user under the current filters."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn(message, UserWarning, stacklevel=1)
    return bool(caught)


def test_quiet_lightning_filters_only_while_the_call_runs() -> None:
    noise = "No positive samples found in target, recall is undefined"
    loggers = [logging.getLogger(n) for n in LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    filters = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # every warning shown, whatever was shown before
        outer = list(warnings.filters)
        with quiet_lightning(progress=False):
            assert not _shown(noise) and _shown("a warning that concerns the user")
            assert all(lg.level == logging.WARNING for lg in loggers)
        assert warnings.filters == outer and _shown(noise)
    assert warnings.filters == filters
    assert [lg.level for lg in loggers] == levels


def test_the_callback_filters_from_setup_to_teardown() -> None:
    callback = QuietLightning(progress=False)
    filters = list(warnings.filters)
    callback.setup(None, None, "fit")
    assert len(warnings.filters) > len(filters)
    callback.teardown(None, None, "fit")
    assert warnings.filters == filters
