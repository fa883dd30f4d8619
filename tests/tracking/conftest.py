"""A file store in a temporary folder for every tracking test, as MLflow's environment names it."""

from __future__ import annotations

import pytest

mlflow = pytest.importorskip("mlflow", reason="the test extra installs mlflow-skinny")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """MLFLOW_TRACKING_URI of a fresh file store; the MLflow client reading it."""
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(uri)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
