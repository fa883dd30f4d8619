"""One declaration per Param, from which a stage gets everything else.

A :class:`Declared` holds every fact of one Param: its name, doc, type converter, default,
the check its value must pass and the type shown in signatures. :func:`declare_params` turns a
list of them into the Params of a mixin (pyspark ``Param`` attributes, defaults, ``getX``
getters); :func:`declare_stage` gives a stage its ``setX`` setters and the keyword signatures of
``__init__``/``setParams`` (with the true defaults), writing both for a stage without them;
:func:`declare_model` gives a fitted model the setters of the Params declared ``at_transform``;
:func:`checked_values` runs the checks on the driver before any job. A Param that a pyspark
shared mixin already defines (``HasSeed``, ``HasBatchSize``, ...) is declared with ``doc=None``:
the mixin's Param is kept, and only its default, check, setter and keyword come from here.

>>> from pyspark.ml.param import Params, TypeConverters
>>> @declare_params(Declared("width", "columns (int >= 1)", TypeConverters.toInt, 3, IntRange(1)))
... class _Sized(Params):
...     pass
>>> @declare_stage
... class Sized(_Sized):
...     pass
>>> Sized().setWidth(5).getWidth(), Sized(width=4).getWidth(), Sized().getWidth()
(5, 4, 3)
>>> checked_values(Sized().setWidth(0))
Traceback (most recent call last):
...
ValueError: The 'width' param of Sized must be an int in [1, inf). Got 0 instead.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.ml.param import Param, Params

from sparktf.param.validation import (
    check_choice,
    check_float_range,
    check_int_list,
    check_int_range,
)

__all__ = [
    "Choice",
    "Declared",
    "FloatRange",
    "IntList",
    "IntRange",
    "checked_values",
    "declare_model",
    "declare_params",
    "declare_stage",
]

#: A declaration's default when the Param has none (``isDefined`` is false until it is set).
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()


@dataclass(frozen=True)
class IntRange:
    """The value is an int in ``[low, high]`` (``None``: no bound)."""

    low: int | None = None
    high: int | None = None

    def __call__(self, stage: Params, name: str) -> int:
        return check_int_range(stage, name, self.low, self.high)


@dataclass(frozen=True)
class FloatRange:
    """The value is a finite float in the interval; ``closed``: both, left, right or neither."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def __call__(self, stage: Params, name: str) -> float:
        return check_float_range(stage, name, self.low, self.high, self.closed)


@dataclass(frozen=True)
class Choice:
    """The value is one of ``choices`` (case-insensitive); the check returns it lower-cased."""

    choices: tuple[str, ...]

    def __call__(self, stage: Params, name: str) -> str:
        return check_choice(stage, name, self.choices)


@dataclass(frozen=True)
class IntList:
    """The value is a list of ints >= ``low``."""

    low: int = 1

    def __call__(self, stage: Params, name: str) -> list[int]:
        return check_int_list(stage, name, self.low)


@dataclass(frozen=True)
class Declared:
    """Every fact of one Param. ``doc=None``: a pyspark shared mixin defines the Param."""

    name: str
    doc: str | None = None
    converter: Callable[[Any], Any] | None = None
    default: Any = UNSET
    check: Callable[[Params, str], Any] | None = None
    kind: str = "Any"
    #: Whether a keyword passed as None reaches the stage's ``_set`` (to be refused there)
    #: instead of leaving the Param alone.
    keep_none: bool = False
    #: Whether the Param acts when a fitted model transforms (output columns, thresholds, batch
    #: size): such a Param gets a setter on the model too (:func:`declare_model`), as MLlib's
    #: models have setters for theirs.
    at_transform: bool = False


def _title(name: str) -> str:
    return name[0].upper() + name[1:]


def _declarations(cls: type) -> dict[str, Declared]:
    """Every declaration of ``cls``, a class's own before those of its bases."""
    found: dict[str, Declared] = {}
    for klass in cls.__mro__:
        for name, item in klass.__dict__.get("_declared", {}).items():
            found.setdefault(name, item)
    return found


def _defined(cls: type, attr: str) -> bool:
    return any(attr in klass.__dict__ for klass in cls.__mro__)


def _getter(name: str) -> Callable[[Params], Any]:
    def get(self: Params) -> Any:
        # A copy, so changing the returned list or dict never changes the stage.
        return copy.deepcopy(self.getOrDefault(name))

    get.__name__ = f"get{_title(name)}"
    get.__doc__ = f"Gets the value of {name} or its default value."
    return get


def _setter(name: str) -> Callable[[Params, Any], Params]:
    def set_(self: Params, value: Any) -> Params:
        return self._set(**{name: value})

    set_.__name__ = f"set{_title(name)}"
    set_.__doc__ = f"Sets the value of :py:attr:`{name}`."
    return set_


def _set_defaults(stage: Params) -> None:
    stage._setDefault(
        **{
            name: copy.deepcopy(item.default)
            for name, item in _declarations(type(stage)).items()
            if item.default is not UNSET
        }
    )


def declare_params(*declared: Declared) -> Callable[[type], type]:
    """Class decorator: the declared Params, their defaults and getters on a Params mixin."""

    def decorate(cls: type) -> type:
        for item in declared:
            if item.doc is not None:
                param = Param(Params._dummy(), item.name, item.doc, typeConverter=item.converter)
                setattr(cls, item.name, param)
            getter = f"get{_title(item.name)}"
            if not _defined(cls, getter):
                setattr(cls, getter, _getter(item.name))
        cls._declared = {item.name: item for item in declared}
        own = cls.__dict__.get("__init__")

        def __init__(self: Params, *args: Any, **kwargs: Any) -> None:
            if own is not None:
                own(self, *args, **kwargs)
            else:  # the next class in the instance's MRO, as a cooperative __init__ would
                super(cls, self).__init__(*args, **kwargs)
            _set_defaults(self)

        __init__.__doc__ = own.__doc__ if own is not None else None
        __init__._own = own  # type: ignore[attr-defined]
        cls.__init__ = __init__
        return cls

    return decorate


def _keyword_signature(cls: type, returns: str) -> inspect.Signature:
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for item in _declarations(cls).values():
        default = None if item.default is UNSET else item.default
        params.append(
            inspect.Parameter(
                item.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=item.kind
            )
        )
    return inspect.Signature(params, return_annotation=returns)


def _add_keyword_methods(cls: type) -> None:
    """``__init__(**params)`` and ``setParams(**params)`` that set the Params passed, for a stage
    that defines neither (the two every plain stage would write the same way)."""

    def __init__(self: Params, **params: Any) -> None:
        super(cls, self).__init__()
        _set_defaults(self)
        self._set(**keywords(self, "__init__", params))

    def setParams(self: Params, **params: Any) -> Params:
        return self._set(**keywords(self, "setParams", params))

    setParams.__doc__ = f"Sets Params of this {cls.__name__} (same keywords as the constructor)."
    for func in (__init__, setParams):
        func.__qualname__ = f"{cls.__qualname__}.{func.__name__}"
        func.__module__ = cls.__module__
        setattr(cls, func.__name__, func)


def declare_stage(cls: type) -> type:
    """Class decorator for a stage: ``setX`` for every declared Param it lacks, the keyword
    signatures of ``__init__`` and ``setParams`` (shown by ``help`` and ``inspect``), against
    which :func:`keywords` checks what a caller passes, and both methods themselves for a stage
    that defines neither."""
    for name in _declarations(cls):
        setter = f"set{_title(name)}"
        if not _defined(cls, setter):
            setattr(cls, setter, _setter(name))
    init = cls.__dict__.get("__init__")
    if getattr(init, "_own", init) is None and "setParams" not in cls.__dict__:
        _add_keyword_methods(cls)  # (declare_params's __init__ of a class without its own)
    for method, returns in (("__init__", "None"), ("setParams", cls.__name__)):
        func = cls.__dict__.get(method)
        if func is not None:
            func.__signature__ = _keyword_signature(cls, returns)
    return cls


def declare_model(cls: type) -> type:
    """Class decorator for a fitted model: ``setX`` for every Param declared ``at_transform``
    that it lacks (its training Params stay read-only, as on MLlib's models)."""
    for name, item in _declarations(cls).items():
        setter = f"set{_title(name)}"
        if item.at_transform and not _defined(cls, setter):
            setattr(cls, setter, _setter(name))
    return cls


def keywords(stage: Params, method: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keywords a caller passed to ``method``, checked against the declared ones (an unknown
    keyword raises TypeError, as Python does), without those passed as None (left alone) unless
    declared ``keep_none``."""
    func = getattr(type(stage), method)
    try:
        inspect.signature(func).bind(stage, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{type(stage).__name__}.{method}: {exc}") from None
    declared = _declarations(type(stage))
    return {
        name: value
        for name, value in kwargs.items()
        if value is not None or declared[name].keep_none
    }


def checked_values(stage: Params, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the declared checks (of ``names``, default every Param with a check) and return the
    checked values."""
    declared = _declarations(type(stage))
    if names is None:
        names = [name for name, item in declared.items() if item.check is not None]
    values = {}
    for name in names:
        check = declared[name].check
        values[name] = check(stage, name) if check else stage.getOrDefault(name)
    return values
