"""A search's checkpoint folder: every finished trial, written by the task that trained it.

Layout under ``checkpointDir`` (any path pyarrow's file systems reach: a local or shared
folder, ``hdfs://``, ``s3://``, ``gs://``)::

    search.json              what the trials belong to: a digest of the grid, the estimator,
                             the evaluator, the data, the folds and the rungs
    trials/<name>.keras      the trial's model, weights and optimizer state
    trials/<name>.json       its record (metric, epochs, seconds, failure); written last, so a
                             trial counts as finished only once both files are complete

``<name>`` is ``m<map>-f<fold>-e<epochs>``. A search started again with the same folder reads
the records, skips every finished trial and continues from their models; a folder whose
``search.json`` differs in any digest is refused, naming what changed. Nothing is unpickled:
records are JSON and models ``.keras`` files.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

__all__ = ["CheckpointDir", "trial_name"]


def trial_name(map_index: int, fold: int, epochs: int) -> str:
    return f"m{map_index:04d}-f{fold}-e{epochs:04d}"


def _filesystem(uri: str):
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri)


class CheckpointDir:
    """A checkpoint folder, named by a URI that the driver and every executor can reach."""

    def __init__(self, path: str) -> None:
        self.uri = path if "://" in path else os.path.abspath(path)

    def _fs(self):
        filesystem, root = _filesystem(self.uri)
        return filesystem, root.rstrip("/")

    def _read(self, filesystem, path: str) -> bytes:
        with filesystem.open_input_stream(path) as handle:
            return handle.read()

    def _write(self, filesystem, path: str, data: bytes) -> None:
        partial = f"{path}.{uuid.uuid4().hex[:8]}.partial"
        with filesystem.open_output_stream(partial) as handle:
            handle.write(data)
        filesystem.move(partial, path)

    # -- driver side ------------------------------------------------------------------------

    def open(self, digests: dict[str, str], stage: str) -> dict[str, dict[str, Any]]:
        """Claim the folder for the search ``digests`` describe; the records it already holds.

        Raises ``ValueError`` if the folder holds trials of a different search.
        """
        from pyarrow import fs

        filesystem, root = self._fs()
        filesystem.create_dir(f"{root}/trials", recursive=True)
        marker = f"{root}/search.json"
        if filesystem.get_file_info(marker).type == fs.FileType.File:
            saved = json.loads(self._read(filesystem, marker))
            changed = [
                k for k in sorted(set(saved) | set(digests)) if saved.get(k) != digests.get(k)
            ]
            if changed:
                raise ValueError(
                    f"{stage}: checkpointDir {self.uri} holds the trials of a different search "
                    f"(changed: {', '.join(changed)}); its results cannot be reused. Give a new "
                    "folder, or delete this one to start over."
                )
        else:
            self._write(filesystem, marker, json.dumps(digests, indent=1).encode())
        records = {}
        selector = fs.FileSelector(f"{root}/trials", allow_not_found=True)
        for info in filesystem.get_file_info(selector):
            if info.type == fs.FileType.File and info.base_name.endswith(".json"):
                record = json.loads(self._read(filesystem, info.path))
                records[info.base_name[: -len(".json")]] = record
        return records

    def model(self, name: str) -> bytes:
        """The ``.keras`` bytes of the finished trial ``name``."""
        filesystem, root = self._fs()
        return self._read(filesystem, f"{root}/trials/{name}.keras")

    # -- task side --------------------------------------------------------------------------

    def save(self, name: str, record: dict[str, Any], model: bytes | None) -> None:
        """Write one finished trial: its model (if it has one), then its record."""
        filesystem, root = self._fs()
        if model is not None:
            self._write(filesystem, f"{root}/trials/{name}.keras", model)
        self._write(filesystem, f"{root}/trials/{name}.json", json.dumps(record).encode())
