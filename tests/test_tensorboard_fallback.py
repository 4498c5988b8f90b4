"""TensorBoard logging works where tensorboardX is missing (the GPU image): the run
logger falls back to torch.utils.tensorboard, and says what to install when neither is there."""

from __future__ import annotations

import sys
import types

import pytest

from agents import logging_utils


class _Writer:
    def __init__(self, logdir):
        self.logdir, self.rows = logdir, []

    def add_scalar(self, tag, value, step):
        self.rows.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        pass


def test_falls_back_to_torch_tensorboard(monkeypatch, tmp_path):
    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = _Writer
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    writer = logging_utils.summary_writer(str(tmp_path / "tb"))
    assert isinstance(writer, _Writer) and writer.logdir == str(tmp_path / "tb")


def test_names_the_packages_when_neither_is_installed(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ValueError, match="tensorboardX.*tensorboard"):
        logging_utils.summary_writer(str(tmp_path / "tb"))
