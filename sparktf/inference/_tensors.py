"""A loaded model as the engine sees it: its input and output tensors, and runners over them.

:class:`LoadedModel` is the base of the three sources in :mod:`sparktf.inference._sources`; it
resolves the names a stage's columns map to (raising
:class:`~sparktf.errors.UnknownTensorError` with the model's listing) and keeps one runner per
(feeds, fetches). TensorFlow is imported only inside functions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparktf.errors import UnknownTensorError
from sparktf.inference._plan import shape_text

__all__ = [
    "LoadedModel",
    "Runner",
    "TensorInfo",
    "UnknownTensorError",
    "first_line",
    "tensor_info",
    "tf",
]

_NON_NUMERIC = ("string", "bool", "resource", "variant")


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
        shape = "unknown" if self.shape is None else shape_text(self.shape)
        return f"'{self.name}' ({self.dtype}, {shape})"


def _shape_str(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


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
            + self._more_names(kind)
        )

    def _extra_tensor(self, name: str, kind: str) -> TensorInfo | None:
        return None

    def _more_names(self, kind: str) -> str:
        """What else an unknown ``kind`` tensor's message lists (e.g. a Keras model's layers)."""
        return ""

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


def tf():
    from sparktf._tf import configure_tensorflow

    return configure_tensorflow()


def tensor_info(name: str, dtype: Any, shape: Any, aliases: Sequence[str] = ()) -> TensorInfo:
    dims = None if shape is None or shape.rank is None else tuple(shape.as_list())
    aliases = tuple(a for a in dict.fromkeys(aliases) if a and a != name)
    return TensorInfo(name, str(getattr(dtype, "name", dtype)), dims, aliases)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
