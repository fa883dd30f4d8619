"""The three kinds of model the engine loads in the workers, and the per-process cache.

Each kind is a :class:`~sparktf.inference._tensors.LoadedModel` that lists its input and output
tensors and builds a runner for a chosen set of them:

* ``graphdef``: a frozen TF1 ``GraphDef`` (a ``.pb`` file), addressed by tensor names
  (``"softmax:0"``, or ``"softmax"`` for output 0 of an operation). Inputs are its placeholders.
* ``savedmodel``: a TF2 SavedModel directory and one of its signatures; inputs and outputs are
  addressed by signature key (``"image"``) or by tensor name in the signature's graph.
* ``keras``: a Keras ``.keras`` (or legacy ``.h5``) file; inputs and outputs are addressed by
  name (``model.inputs[i].name``, ``model.output_names``).

:func:`load_model` and :func:`cached_model` import TensorFlow inside functions, through
:func:`sparktf._tf.configure_tensorflow`, so that thread pools and GPUs follow the Spark task.
"""

from __future__ import annotations

import os
import shutil
import threading
import weakref
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sparktf.errors import ModelSourceError, UnknownTensorError
from sparktf.inference._formats import FORMATS, keras_suffix, unzip_files
from sparktf.inference._keras import KerasModel
from sparktf.inference._tensors import LoadedModel, Runner, TensorInfo, first_line, tensor_info
from sparktf.inference._tensors import tf as _tf

__all__ = [
    "LOAD_COUNTS",
    "GraphDefModel",
    "KerasModel",
    "ModelSourceError",
    "SavedModelModel",
    "cached_model",
    "load_model",
]

#: How many times each model key was loaded in this process (diagnostics and tests).
LOAD_COUNTS: dict[str, int] = {}
_counts_lock = threading.Lock()


def _tensor_name(name: str) -> str:
    return name if ":" in name else f"{name}:0"


class GraphDefModel(LoadedModel):
    """A frozen GraphDef imported into a wrapped function, pruned per (feeds, fetches)."""

    format = "graphdef"
    _SKIP_OUTPUT_TYPES = ("Const", "NoOp", "Placeholder", "PlaceholderWithDefault", "Assert")

    def __init__(self, data: bytes) -> None:
        tf = _tf()
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(data)
        except Exception as exc:
            raise ModelSourceError(f"not a serialized GraphDef ({exc})") from None
        if not graph_def.node:
            raise ModelSourceError("the GraphDef holds no operations")
        try:
            self.wrapped = tf.compat.v1.wrap_function(
                lambda: tf.compat.v1.import_graph_def(graph_def, name=""), []
            )
        except Exception as exc:
            raise ModelSourceError(f"the GraphDef cannot be imported ({exc})") from None
        self.graph = self.wrapped.graph
        ops = self.graph.get_operations()
        consumed = {t.name for op in ops for t in op.inputs}
        inputs = [
            tensor_info(op.outputs[0].name, op.outputs[0].dtype, op.outputs[0].shape, [op.name])
            for op in ops
            if op.type == "Placeholder"
        ]
        outputs = [
            tensor_info(t.name, t.dtype, t.shape, [op.name] if t.value_index == 0 else [])
            for op in ops
            if op.type not in self._SKIP_OUTPUT_TYPES
            for t in op.outputs
            if t.name not in consumed
        ]
        super().__init__(inputs, outputs)

    def _extra_tensor(self, name: str, kind: str) -> TensorInfo | None:
        # Any tensor of the graph may be fetched (e.g. an intermediate layer) or fed.
        try:
            tensor = self.graph.get_tensor_by_name(_tensor_name(name))
        except (KeyError, ValueError):
            return None
        return tensor_info(tensor.name, tensor.dtype, tensor.shape)

    def check_feeds(self, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        fed = {self.input(n).name for n in inputs}
        pending = [self.graph.get_tensor_by_name(self.output(n).name).op for n in outputs]
        seen: set[str] = set()
        missing: list[str] = []
        while pending:
            op = pending.pop()
            if op.name in seen:
                continue
            seen.add(op.name)
            if op.type == "Placeholder" and op.outputs[0].name not in fed:
                missing.append(op.outputs[0].name)
            for tensor in op.inputs:
                if tensor.name not in fed:
                    pending.append(tensor.op)
            pending.extend(op.control_inputs)
        if missing:
            raise ValueError(
                f"The graphdef model needs a value for input tensor(s) {sorted(missing)} to "
                f"compute {list(outputs)}; map a column to each. {self._listing()}"
            )

    def _make_runner(
        self, inputs: tuple[str, ...], outputs: tuple[str, ...], freeze: bool = False
    ) -> Runner:
        tf = _tf()
        function = self.wrapped.prune(
            feeds=[self.graph.get_tensor_by_name(n) for n in inputs],
            fetches=[self.graph.get_tensor_by_name(n) for n in outputs],
        )
        dtypes = [self.graph.get_tensor_by_name(n).dtype for n in inputs]

        def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            feeds = [tf.constant(a, dtype=d) for a, d in zip(arrays, dtypes, strict=True)]
            return [np.asarray(t) for t in function(*feeds)]

        return run


class SavedModelModel(LoadedModel):
    """One signature of a TF2 SavedModel. With ``owned``, ``directory`` is a temporary folder
    the model was unpacked to: it lives as long as the model and :meth:`close` removes it."""

    format = "savedmodel"

    def __init__(self, directory: str, signature: str, owned: bool = False) -> None:
        self.directory = directory
        self._remove = weakref.finalize(self, shutil.rmtree, directory, True) if owned else None
        tf = _tf()
        try:
            loaded = tf.saved_model.load(directory)
        except Exception as exc:
            raise ModelSourceError(f"not a readable SavedModel ({first_line(exc)})") from None
        signatures = dict(getattr(loaded, "signatures", {}) or {})
        if signature not in signatures:
            raise UnknownTensorError(
                f"The SavedModel has no signature '{signature}'. Its signatures: "
                f"{sorted(signatures) or 'none'}."
            )
        self.loaded = loaded  # keeps variables alive
        self.function = signatures[signature]
        specs = self.function.structured_input_signature[1]
        graph_inputs = {t.name.split(":")[0]: t.name for t in self.function.inputs}
        inputs = [
            tensor_info(
                key, spec.dtype, spec.shape, [spec.name, graph_inputs.get(spec.name or "", "")]
            )
            for key, spec in sorted(specs.items())
        ]
        structured = self.function.structured_outputs
        flat_keys = tf.nest.flatten({k: k for k in structured})
        graph_outputs = dict(zip(flat_keys, (t.name for t in self.function.outputs), strict=False))
        outputs = [
            tensor_info(key, spec.dtype, spec.shape, [graph_outputs.get(key, "")])
            for key, spec in sorted(structured.items())
        ]
        super().__init__(inputs, outputs)

    def close(self) -> None:
        """Remove the unpacked folder (when the model owns one); done when the model leaves
        :data:`sparktf._loading.MODEL_CACHE`."""
        if self._remove is not None:
            self._remove()

    def _make_runner(
        self, inputs: tuple[str, ...], outputs: tuple[str, ...], freeze: bool = False
    ) -> Runner:
        tf = _tf()
        dtypes = {t.name: tf.as_dtype(t.dtype) for t in self.inputs}

        def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            feeds = {
                k: tf.constant(a, dtype=dtypes[k]) for k, a in zip(inputs, arrays, strict=True)
            }
            result = self.function(**feeds)
            return [np.asarray(result[k]) for k in outputs]

        return run


def load_model(spec: dict[str, Any], data: bytes | None) -> LoadedModel:
    """Load the model described by ``spec`` from ``data`` (bytes) or from ``spec["path"]``.

    ``spec`` holds ``format``, ``path`` (used when ``data`` is None), ``signature``
    (SavedModel), ``name`` (for messages) and ``unsafe`` (load Keras models that hold Python
    code; decided on the driver). Raises :class:`ModelSourceError` when the model cannot be
    read, :class:`sparktf.errors.UnsafeModelError` when it is refused.
    """
    fmt = spec["format"]
    name = spec.get("name") or spec.get("path") or "model bytes"
    try:
        if fmt == "graphdef":
            if data is None:
                tf = _tf()
                with tf.io.gfile.GFile(spec["path"], "rb") as handle:
                    data = handle.read()
            return GraphDefModel(data)
        if fmt == "savedmodel":
            signature = spec.get("signature") or "serving_default"
            if data is None:
                return SavedModelModel(spec["path"], signature)
            return _unpacked_savedmodel(data, signature)
        if fmt == "keras":
            from sparktf._loading import UnsafeModelError, load_keras_bytes, load_keras_file

            safe = not spec.get("unsafe", False)
            try:
                if data is None:
                    model = load_keras_file(spec["path"], safe_mode=safe)
                else:
                    model = load_keras_bytes(data, suffix=keras_suffix(data), safe_mode=safe)
            except UnsafeModelError as exc:
                raise UnsafeModelError(f"Cannot load the keras model from {name}: {exc}") from None
            except Exception as exc:
                raise ModelSourceError(f"not a loadable Keras file ({first_line(exc)})") from None
            return KerasModel(model)
    except ModelSourceError as exc:
        raise ModelSourceError(f"Cannot load the {fmt} model from {name}: {exc}") from None
    raise ModelSourceError(f"Unknown model format {fmt!r}; expected one of {FORMATS}.")


def _unpacked_savedmodel(data: bytes, signature: str) -> SavedModelModel:
    """A SavedModel from the bytes of a zip of its directory, unpacked to a temporary folder that
    the model owns (removed when it leaves the cache, or here when it cannot be loaded)."""
    from sparktf._loading import model_temp_dir

    try:
        files = unzip_files(data)
    except zipfile.BadZipFile:
        raise ModelSourceError("not a zip archive of a SavedModel directory") from None
    directory = model_temp_dir()
    try:
        for rel, content in files.items():
            target = os.path.join(directory, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(content)
        return SavedModelModel(directory, signature, owned=True)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def cached_model(spec: dict[str, Any], data: Callable[[], bytes | None]) -> LoadedModel:
    """The model for ``spec["key"]`` from this process's cache, loading it on first use.

    ``data`` returns the model bytes (e.g. a broadcast's value), or None to load from the path;
    it is only called when the model is not cached.
    """
    from sparktf._loading import MODEL_CACHE

    key = spec["key"]

    def loader() -> LoadedModel:
        model = load_model(spec, data())
        with _counts_lock:
            LOAD_COUNTS[key] = LOAD_COUNTS.get(key, 0) + 1
        return model

    return MODEL_CACHE.get(key, loader)
