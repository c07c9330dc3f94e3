"""siamese_core.settings: every SIAMESE_* variable, read when asked, checked with a one-line message."""

from pathlib import Path

import pytest

from siamese_core import settings
from siamese_core.errors import UserError

DEPLOYMENT = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"


def test_the_deployment_page_lists_every_setting():
    assert settings.markdown_table() in DEPLOYMENT.read_text(encoding="utf-8")


def test_defaults_when_unset(monkeypatch):
    for name in settings.SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert settings.runs_dir() == Path("runs")
    assert settings.max_training_runs() == 1
    assert settings.data_root() is None
    assert settings.mnist_dir() == Path("data/mnist") == settings.default_mnist_dir()
    assert settings.upload_max_bytes() == 2048 * 2**20 and settings.upload_max_files() == 100_000
    assert settings.weights_file() == ""
    assert settings.image_memory_bytes() == 4 * 2**30
    assert settings.memory_budget_bytes() == 2 * 2**30 and settings.upload_max_ratio() == 100
    assert settings.warm_umap() is True


def test_read_at_call_time_and_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("SIAMESE_RUNS_DIR", str(tmp_path))
    assert settings.runs_dir() == tmp_path
    monkeypatch.setenv("SIAMESE_IMAGE_MEMORY_GB", "0.5")
    assert settings.image_memory_bytes() == 2**29
    monkeypatch.setenv("SIAMESE_IMAGE_MEMORY_GB", "-1")
    with pytest.raises(UserError, match="SIAMESE_IMAGE_MEMORY_GB must be a non-negative number, not '-1'"):
        settings.image_memory_bytes()
    monkeypatch.setenv("SIAMESE_UPLOAD_MAX_FILES", "0")
    with pytest.raises(UserError, match="SIAMESE_UPLOAD_MAX_FILES must be a positive number"):
        settings.upload_max_files()
    monkeypatch.setenv("SIAMESE_MEMORY_BUDGET_GB", "0.5")
    assert settings.memory_budget_bytes() == 2**29
    monkeypatch.setenv("SIAMESE_MEMORY_BUDGET_GB", "lots")
    with pytest.raises(UserError, match="SIAMESE_MEMORY_BUDGET_GB must be a number, not 'lots'"):
        settings.memory_budget_bytes()
    monkeypatch.setenv("SIAMESE_WARM_UMAP", "0")
    assert settings.warm_umap() is False
    monkeypatch.setenv("SIAMESE_WARM_UMAP", "later")
    with pytest.raises(UserError, match="SIAMESE_WARM_UMAP must be 0"):
        settings.warm_umap()
