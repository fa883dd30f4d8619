"""Model sources for :class:`~sparktf.transformer.TFGraphTransformer`.

Three kinds of trained model are supported, each turned into a :class:`LoadedModel` that lists its
input and output tensors and builds a runner for a chosen set of them:

* ``graphdef``: a frozen TF1 ``GraphDef`` (a ``.pb`` file), addressed by tensor names
  (``"softmax:0"``, or ``"softmax"`` for output 0 of an operation). Inputs are its placeholders.
* ``savedmodel``: a TF2 SavedModel directory and one of its signatures; inputs and outputs are
  addressed by signature key (``"image"``) or by tensor name in the signature's graph.
* ``keras``: a Keras ``.keras`` (or legacy ``.h5``) file; inputs and outputs are addressed by
  name (``model.inputs[i].name``, ``model.output_names``).

The driver half (format detection, reading bytes, fingerprints) imports no TensorFlow. The worker
half (:func:`load_model`, :func:`cached_model`) imports it inside functions, through
:func:`sparktf._tf.configure_tensorflow` so that thread pools and GPUs follow the Spark task.
A SavedModel travels as the bytes of a zip archive of its directory.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import weakref
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparktf.errors import ModelSourceError, UnknownTensorError

__all__ = [
    "FORMATS",
    "LOAD_COUNTS",
    "LoadedModel",
    "ModelSourceError",
    "TensorInfo",
    "UnknownTensorError",
    "cached_model",
    "detect_format",
    "detect_format_from_bytes",
    "load_model",
    "zip_files",
]

FORMATS = ("graphdef", "savedmodel", "keras")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NON_NUMERIC = ("string", "bool", "resource", "variant")

#: How many times each model key was loaded in this process (diagnostics and tests).
LOAD_COUNTS: dict[str, int] = {}
_counts_lock = threading.Lock()


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a model.

    ``shape`` is the full static shape with ``None`` for unknown sizes (the batch dimension
    first, for batched tensors), or ``None`` when even the rank is unknown. ``aliases`` are the
    other names the tensor may be addressed by.
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None
    aliases: tuple[str, ...] = ()

    @property
    def numeric(self) -> bool:
        """Whether the tensor holds numbers (not strings, booleans or resources)."""
        return self.dtype not in _NON_NUMERIC

    def describe(self) -> str:
        """``'name' (dtype, [d0, d1, ...])`` as shown in error messages."""
        shape = "unknown" if self.shape is None else _shape_str(self.shape)
        return f"'{self.name}' ({self.dtype}, {shape})"


def _shape_str(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# -- driver side: format detection -----------------------------------------------------------


def detect_format(path: str, is_dir: bool) -> str:
    """The model format of a path: a directory is a SavedModel, ``.keras``/``.h5`` are Keras files,
    anything else a frozen GraphDef.

    >>> detect_format("/models/inception.pb", False), detect_format("/m/net.h5", False)
    ('graphdef', 'keras')
    """
    if is_dir:
        return "savedmodel"
    lower = path.lower().rstrip("/")
    if lower.endswith((".keras", ".h5", ".hdf5")):
        return "keras"
    return "graphdef"


def detect_format_from_bytes(data: bytes) -> str:
    """The model format of in-memory model bytes (zip of a SavedModel, Keras zip or HDF5, or
    a serialized GraphDef)."""
    if data.startswith(_HDF5_MAGIC):
        return "keras"
    if data.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return "graphdef"
        if "saved_model.pb" in names or "saved_model.pbtxt" in names:
            return "savedmodel"
        return "keras"
    return "graphdef"


def keras_suffix(data: bytes) -> str:
    """File suffix Keras needs to load model bytes: ``.h5`` for HDF5, else ``.keras``."""
    return ".h5" if data.startswith(_HDF5_MAGIC) else ".keras"


def zip_files(files: dict[str, bytes]) -> bytes:
    """A zip archive (stored, not compressed) of ``{relative path: bytes}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(files):
            archive.writestr(name, files[name])
    return buffer.getvalue()


def unzip_files(data: bytes) -> dict[str, bytes]:
    """The ``{relative path: bytes}`` held by a zip archive made by :func:`zip_files`."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


# -- worker side: loaded models --------------------------------------------------------------

Runner = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


class LoadedModel:
    """A loaded model: its inputs and outputs, and runners over chosen tensors."""

    format: str = ""

    def __init__(self, inputs: list[TensorInfo], outputs: list[TensorInfo]) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self._runners: dict[tuple[tuple[str, ...], tuple[str, ...]], Runner] = {}
        self._lock = threading.Lock()

    def _listing(self) -> str:
        ins = ", ".join(t.describe() for t in self.inputs) or "none"
        outs = ", ".join(t.describe() for t in self.outputs) or "none"
        return f"Its inputs: {ins}. Its outputs: {outs}."

    def _resolve(self, name: str, kind: str) -> TensorInfo:
        listed = self.inputs if kind == "input" else self.outputs
        for info in listed:
            if name == info.name or name in info.aliases:
                return info
        found = self._extra_tensor(name, kind)
        if found is not None:
            return found
        raise UnknownTensorError(
            f"The {self.format} model has no {kind} tensor '{name}'. {self._listing()}"
        )

    def _extra_tensor(self, name: str, kind: str) -> TensorInfo | None:
        return None

    def input(self, name: str) -> TensorInfo:
        """The input tensor addressed by ``name``; raises :class:`UnknownTensorError`."""
        return self._resolve(name, "input")

    def output(self, name: str) -> TensorInfo:
        """The output tensor addressed by ``name``; raises :class:`UnknownTensorError`."""
        return self._resolve(name, "output")

    def check_feeds(self, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        """Raise ValueError if the outputs need inputs that are not fed."""
        fed = {self.input(n).name for n in inputs}
        missing = [t.name for t in self.inputs if t.name not in fed]
        if missing:
            raise ValueError(
                f"The {self.format} model needs a value for every input; no column is mapped to "
                f"{missing}. {self._listing()}"
            )

    def runner(self, inputs: Sequence[str], outputs: Sequence[str], freeze: bool = False) -> Runner:
        """A function from arrays (one per input, in order) to arrays (one per output).

        ``freeze`` runs a Keras model as a frozen graph: its variables folded into constants,
        so that TensorFlow's graph optimizer can fold them further (batch normalization into
        the convolution before it). Other formats ignore it (a GraphDef is frozen already).
        """
        key = (
            tuple(self.input(n).name for n in inputs),
            tuple(self.output(n).name for n in outputs),
            bool(freeze),
        )
        with self._lock:
            if key not in self._runners:
                self._runners[key] = self._make_runner(*key)
            return self._runners[key]

    def _make_runner(
        self, inputs: tuple[str, ...], outputs: tuple[str, ...], freeze: bool = False
    ) -> Runner:
        raise NotImplementedError


def _tf():
    from sparktf._tf import configure_tensorflow

    return configure_tensorflow()


def _tensor_info(name: str, dtype: Any, shape: Any, aliases: Sequence[str] = ()) -> TensorInfo:
    dims = None if shape is None or shape.rank is None else tuple(shape.as_list())
    aliases = tuple(a for a in dict.fromkeys(aliases) if a and a != name)
    return TensorInfo(name, str(getattr(dtype, "name", dtype)), dims, aliases)


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
            _tensor_info(op.outputs[0].name, op.outputs[0].dtype, op.outputs[0].shape, [op.name])
            for op in ops
            if op.type == "Placeholder"
        ]
        outputs = [
            _tensor_info(t.name, t.dtype, t.shape, [op.name] if t.value_index == 0 else [])
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
        return _tensor_info(tensor.name, tensor.dtype, tensor.shape)

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
            raise ModelSourceError(f"not a readable SavedModel ({_first_line(exc)})") from None
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
            _tensor_info(
                key, spec.dtype, spec.shape, [spec.name, graph_inputs.get(spec.name or "", "")]
            )
            for key, spec in sorted(specs.items())
        ]
        structured = self.function.structured_outputs
        flat_keys = tf.nest.flatten({k: k for k in structured})
        graph_outputs = dict(zip(flat_keys, (t.name for t in self.function.outputs), strict=False))
        outputs = [
            _tensor_info(key, spec.dtype, spec.shape, [graph_outputs.get(key, "")])
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


class KerasModel(LoadedModel):
    """A Keras model, called through one ``tf.function`` with a dynamic batch dimension."""

    format = "keras"

    def __init__(self, model: Any) -> None:
        self.model = model
        model_inputs = list(model.inputs or [])
        if not model_inputs:
            raise ModelSourceError("the Keras model has no defined inputs (build it first)")
        model_outputs = list(model.outputs or [])
        names = list(getattr(model, "output_names", None) or [])
        if len(names) != len(model_outputs) or len(set(names)) != len(names):
            names = [_keras_name(t) for t in model_outputs]
        tf = _tf()
        inputs = [
            _tensor_info(_keras_name(t), t.dtype, tf.TensorShape(t.shape), [t.name, f"input_{i}"])
            for i, t in enumerate(model_inputs)
        ]
        outputs = [
            _tensor_info(name, t.dtype, tf.TensorShape(t.shape), [t.name, f"output_{i}"])
            for i, (name, t) in enumerate(zip(names, model_outputs, strict=True))
        ]
        super().__init__(inputs, outputs)

    def _make_runner(
        self, inputs: tuple[str, ...], outputs: tuple[str, ...], freeze: bool = False
    ) -> Runner:
        tf = _tf()
        order = [t.name for t in self.inputs]
        names = [t.name for t in self.outputs]
        specs = [
            tf.TensorSpec([None, *(t.shape or ())[1:]], tf.as_dtype(t.dtype)) for t in self.inputs
        ]
        model = self.model
        single = len(order) == 1

        @tf.function(input_signature=specs)
        def call(*xs):
            result = model(xs[0] if single else list(xs), training=False)
            if isinstance(result, dict):
                return [result[n] for n in names]
            return list(result) if isinstance(result, (list, tuple)) else [result]

        picks = [names.index(n) for n in outputs]
        position = {n: i for i, n in enumerate(inputs)}
        function = _frozen(call, len(specs)) if freeze else call

        def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            result = function(*[tf.constant(arrays[position[n]]) for n in order])
            result = tf.nest.flatten(result)
            return [np.asarray(result[i]) for i in picks]

        return run


def _frozen(function: Any, inputs: int) -> Any:
    """``function`` (a ``tf.function`` with a signature of ``inputs`` tensors) with its variables
    folded into constants; ``function`` itself when that fails (e.g. a model holding lookup
    tables, whose handles would be left as extra inputs of the frozen graph)."""
    import logging

    try:
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        frozen = convert_variables_to_constants_v2(function.get_concrete_function())
        if len(frozen.inputs) != inputs:
            extra = [t.name for t in frozen.inputs[inputs:]]
            raise ValueError(f"resources that cannot be folded into constants: {extra}")
        return frozen
    except Exception as exc:  # the unfrozen function still gives the same results
        logging.getLogger("sparktf").warning(
            "sparktf runs the Keras model unfrozen: freezing it failed (%s)", _first_line(exc)
        )
        return function


def _keras_name(tensor: Any) -> str:
    """A name of a Keras symbolic tensor that survives saving and loading: its layer's name
    (``":i"`` added for output ``i > 0`` of a layer). Tensor names like ``keras_tensor_7`` are
    counters of the process that built the model, so they differ between driver and workers."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return tensor.name
    operation, _, index = history
    return operation.name if not index else f"{operation.name}:{index}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
                raise ModelSourceError(f"not a loadable Keras file ({_first_line(exc)})") from None
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
