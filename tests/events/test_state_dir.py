"""An unsafe state folder: the receiver (and token cache) fall back to memory, and say so once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from airflow_provider_dingtalk._filelock import state_dir


def test_a_folder_open_to_others_is_refused_with_one_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    caplog.set_level(logging.WARNING)
    assert state_dir(folder) is None
    assert state_dir(folder) is None  # asked again (every hook does): no second warning
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert str(folder) in warnings[0] and "0o777" in warnings[0] and "memory" in warnings[0]


def test_a_symlinked_folder_is_refused_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    caplog.set_level(logging.WARNING)
    assert state_dir(link) is None
    assert any(str(link) in r.getMessage() and "symlink" in r.getMessage() for r in caplog.records)


def test_a_private_folder_is_used_without_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert state_dir(tmp_path / "mine") == tmp_path / "mine"
    assert not caplog.records
