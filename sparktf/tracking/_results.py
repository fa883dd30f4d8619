"""What a search's own MLflow run holds at its end: the grid, the evaluator, the best map and
its metric, the search summary (rungs, trials, slot use), the tuning report as CSV, the
sensitivity plot, and the best model as an MLflow Spark model."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from sparktf.tracking._mlflow import param_values

__all__ = ["log_best_model", "log_search_results", "model_signature"]


def _varying(maps: list[dict]) -> list[str]:
    """The names of the Params whose values differ between the maps, in grid order."""
    seen: dict[str, set[str]] = {}
    for pm in maps:
        for p, v in pm.items():
            seen.setdefault(p.name, set()).add(repr(v))
    return [name for name, values in seen.items() if len(values) > 1]


def _slot_use(summary: dict[str, Any]) -> float | None:
    """Task seconds over job wall seconds: how many slots the rung jobs kept busy on average."""
    wall = sum(float(j["wall"]) for j in summary.get("jobs", []))
    busy = sum(float(j["taskSeconds"]) for j in summary.get("jobs", []))
    return busy / wall if wall > 0 else None


def log_search_results(tracker: Any, model: Any, dataset: Any, best_map: dict) -> None:
    """Log the results of a fitted halving validator ``model`` on the search's run."""
    from sparktf.report import plot_sensitivity, tuning_report
    from sparktf.search._metrics import metric_spec

    client, run_id = tracker.client, tracker.run_id
    maps = list(model.getEstimatorParamMaps())
    evaluator = model.getEvaluator()
    spec = metric_spec(evaluator, tracker.stage)
    summary = dict(model.searchSummary)
    best = int(summary["best"])
    metric = float(model.trials[best]["metric"])
    params = param_values(((p.name, v) for p, v in best_map.items()), "best.")
    params["search.evaluator"] = type(evaluator).__name__
    params["search.metric"] = spec.name
    params["search.maps"] = str(len(maps))
    done = client.get_run(run_id).data.params
    for key, value in params.items():
        if key not in done:
            client.log_param(run_id, key, value)
    client.log_metric(run_id, f"best_{spec.name}", metric)
    client.log_metric(run_id, "trials_trained", float(summary["trialsTrained"]))
    client.log_metric(run_id, "task_seconds", float(summary["taskSeconds"]))
    slots = _slot_use(summary)
    if slots is not None:
        client.log_metric(run_id, "busy_slots", slots)
    client.set_tag(run_id, "sparktf.bestMap", tracker.labels[best])
    if best in tracker.map_runs:
        client.set_tag(tracker.map_runs[best], "sparktf.best", "true")
    with tempfile.TemporaryDirectory() as folder:
        grid = [{p.name: v for p, v in pm.items()} for pm in maps]
        files = {
            "grid.json": json.dumps(grid, indent=1, default=repr),
            "search_summary.json": json.dumps(summary, indent=1, default=repr),
            "trials.json": json.dumps(model.trials, indent=1, default=repr),
        }
        for name, text in files.items():
            with open(os.path.join(folder, name), "w") as f:
                f.write(text)
        report = tuning_report(model)
        report.to_csv(os.path.join(folder, "tuning_report.csv"), index=False)
        varying = _varying(maps)
        if varying:
            try:
                plot_sensitivity(
                    report,
                    x=varying[0],
                    line=varying[1] if len(varying) > 1 else None,
                    path=os.path.join(folder, "sensitivity.png"),
                    log_x=varying[0] in ("learningRate", "weightDecay"),
                )
            except (ValueError, TypeError) as exc:  # a grid the plot cannot draw
                client.set_tag(run_id, "sparktf.plotSkipped", str(exc)[:500])
        client.log_artifacts(run_id, folder)
    log_best_model(tracker.mlflow, run_id, model.bestModel, dataset, tracker.own_run)


def model_signature(model: Any, dataset: Any) -> tuple[Any, Any]:
    """The signature of ``model`` on ``dataset``'s features (MLflow reads an ml Vector column
    as its ``SparkMLVector`` type) to its double prediction, and an input example where the
    features are an array (an ml Vector has no pandas form an input example could keep):
    ``(signature, example)``. Read from the rows' schema, without scoring them: that would load
    the network in a Python worker only to learn that a prediction is a double."""
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema
    from pyspark.ml.linalg import VectorUDT

    features = model.getFeaturesCol()
    rows = dataset.select(features).limit(2)
    inputs = infer_signature(rows).inputs
    outputs = Schema([ColSpec("double", model.getPredictionCol())])
    example = None
    if not isinstance(dataset.schema[features].dataType, VectorUDT):
        example = rows.toPandas()
    return ModelSignature(inputs=inputs, outputs=outputs), example


def _requirements() -> list[str]:
    """The packages a reloaded model needs, pinned to those installed here. Named, so MLflow
    does not infer them (it would load the model again in a process of its own, which costs
    more than the rest of the logging)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in ("sparktf", "pyspark", "tensorflow", "tensorflow-cpu", "keras"):
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def log_best_model(mlflow: Any, run_id: str, best: Any, dataset: Any, own_run: bool) -> None:
    """``best`` as the MLflow Spark model ``best_model`` of run ``run_id``, which
    ``mlflow.spark.load_model("runs:/<run id>/best_model")`` loads back (a PipelineModel holding
    it). Saved and logged through the client, so no run need be MLflow's active one."""
    signature, example = model_signature(best, dataset)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "best_model")
        mlflow.spark.save_model(
            best,
            path,
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
        )
        from mlflow.tracking import MlflowClient

        MlflowClient().log_artifacts(run_id, path, "best_model")
