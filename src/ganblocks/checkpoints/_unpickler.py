"""A restricted unpickler for StyleGAN2-ADA's network pickles: tensors, plain containers and persistent records.

StyleGAN2-ADA pickles its networks with ``torch_utils.persistence``: each network (and each of its layers) is
stored as a call ``_reconstruct_persistent_obj(meta)``, where ``meta`` holds the source code of the module that
defined the class (``module_src``), the class name and the object's ``__dict__`` (``state``: its init kwargs,
``_parameters``, ``_buffers``, ``_modules``). Unpickled normally, that source code is executed. Here the call
returns a :class:`PersistentObject` record instead and the source is never run; tensors are rebuilt with
``torch.load(weights_only=True)`` and public tensor methods; every other global is refused.

A file must also not be able to make the loader use unbounded memory or time, or alter what it builds:

- every admitted callable returns an inert record (a slotted object whose ``__setstate__`` raises), so the
  BUILD opcode cannot act on a tensor (``Tensor.__setstate__`` would resize its storage), on a record or on
  the admitted functions themselves; the records become tensors and :class:`PersistentObject` only after the
  pickle is read;
- that conversion refuses a container that contains itself and caps the size of the result counted as a tree
  (:data:`MAX_NODES`): pickle's memo lets a few hundred bytes reference one object exponentially many times;
- a tensor may not claim more elements than its storage holds (a zero stride would let it);
- any other error while reading is re-raised as ``pickle.UnpicklingError``.
"""

from __future__ import annotations

import io
import math
import pickle
import struct
from dataclasses import dataclass
from typing import IO, Any, Callable

import torch

_PERSISTENCE = ("torch_utils.persistence", "_reconstruct_persistent_obj")

# The loaded object counted as a tree (every reference to a shared object counted again, as a walk over it
# would): a StyleGAN2-ADA snapshot at 1024x1024 has a few tens of thousands.
MAX_NODES = 1_000_000
# Nesting depth of containers (each costs a few Python frames here and in later walks); a snapshot nests
# about 20 deep.
MAX_DEPTH = 100


@dataclass(frozen=True, slots=True)
class PersistentObject:
    """One ``torch_utils.persistence`` object as recorded in the file, without its code.

    Attributes:
        class_name: the class name in the recorded module (``"Generator"``, ``"SynthesisLayer"``, ...).
        version: the persistence format version (6 for StyleGAN2-ADA).
        state: the object's ``__dict__`` (``_init_kwargs``, ``_parameters``, ``_buffers``, ``_modules``, ...).
    """

    class_name: str
    version: int
    state: dict[str, Any]

    def init_kwargs(self) -> dict[str, Any]:
        """The keyword arguments the object was constructed with, as plain dicts."""
        args = self.state.get("_init_args", ())
        if args:
            raise ValueError(
                f"{self.class_name} was constructed with positional arguments {args!r}; StyleGAN2-ADA records "
                "keyword arguments only"
            )
        kwargs = plain(self.state.get("_init_kwargs", {}))
        if not isinstance(kwargs, dict):
            raise pickle.UnpicklingError(
                f"{self.class_name}: init kwargs must be a dict, got {type(kwargs).__name__}"
            )
        return kwargs

    def _group(self, group: str) -> dict[str, Any]:
        value = self.state.get(group, {})
        if not isinstance(value, dict):
            raise pickle.UnpicklingError(
                f"{self.class_name}.{group} must be a dict, got {type(value).__name__}"
            )
        return value

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The state dict of the object: its persistent parameters and buffers and those of its children."""
        out: dict[str, torch.Tensor] = {}
        skip = self.state.get("_non_persistent_buffers_set", ())
        if not isinstance(skip, (set, frozenset, list, tuple)):
            raise pickle.UnpicklingError(
                f"{self.class_name}._non_persistent_buffers_set must be a set, got {type(skip).__name__}"
            )
        for group in ("_parameters", "_buffers"):
            for name, value in self._group(group).items():
                if value is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise pickle.UnpicklingError(
                        f"{self.class_name}.{group}[{name!r}] must be a tensor, got {type(value).__name__}"
                    )
                out[f"{prefix}{name}"] = value.detach()
        for name, child in self._group("_modules").items():
            if child is None:
                continue
            if not isinstance(child, PersistentObject):
                raise pickle.UnpicklingError(
                    f"{self.class_name}._modules[{name!r}] must be a persistent object, got {type(child).__name__}"
                )
            out.update(child.tensors(f"{prefix}{name}."))
        return out


def plain(value: Any) -> Any:
    """``value`` with every dict (EasyDict, OrderedDict) made a plain dict and every tuple kept, recursively."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


class _Record:
    """What an admitted call returns while the pickle is read: inert, with no attributes the file could set."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"the pickle sets the state of a {self._what()} (BUILD): refused")

    def _what(self) -> str:
        return type(self).__name__.strip("_").lower()


class _Storage(_Record):
    __slots__ = ("storage",)

    def __init__(self, storage: torch.TypedStorage) -> None:
        self.storage = storage


class _Tensor(_Record):
    __slots__ = ("offset", "requires_grad", "size", "storage", "stride")

    def __init__(
        self,
        storage: _Storage,
        offset: int,
        size: tuple[int, ...],
        stride: tuple[int, ...],
        requires_grad: bool,
    ) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.requires_grad = requires_grad


class _Parameter(_Record):
    __slots__ = ("data", "requires_grad")

    def __init__(self, data: _Tensor, requires_grad: bool) -> None:
        self.data, self.requires_grad = data, requires_grad


class _Persistent(_Record):
    __slots__ = ("class_name", "state", "version")

    def __init__(self, class_name: str, version: int, state: dict[str, Any]) -> None:
        self.class_name, self.version, self.state = class_name, version, state


class _Callable:
    """An admitted function as the unpickler sees it: callable, but BUILD cannot set its attributes
    (``__defaults__``, ``__code__``, ...), which on the function itself would outlive the load."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn

    def __call__(self, *args: Any) -> Any:
        return self._fn(*args)

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(
            f"the pickle sets the state of the global {self._fn.__name__} (BUILD): refused"
        )


def _reconstruct_persistent_obj(meta: Any) -> _Persistent:
    """The record of ``torch_utils.persistence._reconstruct_persistent_obj(meta)``; ``meta['module_src']`` is
    read as a string and dropped, never executed."""
    if not isinstance(meta, dict):
        raise pickle.UnpicklingError(f"persistent object: meta must be a dict, got {type(meta).__name__}")
    kind, class_name, state = meta.get("type"), meta.get("class_name"), meta.get("state")
    if kind != "class" or not isinstance(class_name, str) or not isinstance(state, dict):
        raise pickle.UnpicklingError(
            "persistent object: meta must hold type='class', a class_name string and a state dict, got "
            f"type={kind!r}, class_name={class_name!r}, state of type {type(state).__name__}"
        )
    version = meta.get("version", -1)
    if type(version) is not int:
        raise pickle.UnpicklingError(f"persistent object: version must be an int, got {version!r}")
    return _Persistent(class_name, version, dict(state))


def _load_storage(data: Any) -> _Storage:
    """``torch.storage._load_from_bytes``: a legacy ``torch.save`` of one storage, loaded with weights only."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"storage: expected bytes, got {type(data).__name__}")
    storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    if not isinstance(storage, torch.TypedStorage):
        raise pickle.UnpicklingError(f"storage: the bytes hold a {type(storage).__name__}, not a storage")
    return _Storage(storage)


def _check_no_hooks(hooks: Any) -> None:
    if hooks:
        raise pickle.UnpicklingError("tensor: backward hooks are not loaded (the file holds some)")


def _ints(what: str, values: Any) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or any(type(v) is not int for v in values):
        raise pickle.UnpicklingError(f"tensor: {what} must be a tuple of ints, got {values!r}"[:300])
    return tuple(values)


def _rebuild_tensor(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> _Tensor:
    """``torch._utils._rebuild_tensor_v2``: a view of the storage (``metadata`` carries no data)."""
    _check_no_hooks(backward_hooks)
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"tensor: expected a storage, got {type(storage).__name__}")
    if type(storage_offset) is not int or type(requires_grad) is not bool:
        raise pickle.UnpicklingError(
            f"tensor: expected an int offset and a bool requires_grad, got {storage_offset!r}, {requires_grad!r}"
        )
    offset, size, stride = storage_offset, _ints("size", size), _ints("stride", stride)
    if len(size) != len(stride) or offset < 0 or any(v < 0 for v in size + stride):
        raise pickle.UnpicklingError(f"tensor: invalid layout offset={offset}, size={size}, stride={stride}")
    # set_ would grow a storage too small for the layout, and a zero stride would let a few stored elements
    # stand for any number: a file must not make us allocate beyond its data.
    numel = torch.empty((0,), dtype=storage.storage.dtype).set_(storage.storage).numel()
    extent = 0 if 0 in size else offset + 1 + sum((n - 1) * st for n, st in zip(size, stride))
    if extent > numel:
        raise pickle.UnpicklingError(
            f"tensor: size {size}, stride {stride} and offset {offset} reach element {extent - 1} of a storage "
            f"of {numel} elements"
        )
    if math.prod(size) > numel:
        raise pickle.UnpicklingError(
            f"tensor: size {size} holds {math.prod(size)} elements, more than its storage's {numel} (stride "
            f"{stride})"
        )
    return _Tensor(storage, offset, size, stride, requires_grad)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any, state: Any = None) -> _Parameter:
    """``torch._utils._rebuild_parameter`` (and ``_rebuild_parameter_with_state``, whose extra Python
    attributes are dropped)."""
    _check_no_hooks(backward_hooks)
    if not isinstance(data, _Tensor) or type(requires_grad) is not bool:
        raise pickle.UnpicklingError(
            f"parameter: expected a tensor and a bool, got {type(data).__name__}, {requires_grad!r}"
        )
    return _Parameter(data, requires_grad)


class _Dict(dict):  # type: ignore[type-arg]
    """``collections.OrderedDict`` and ``dnnlib.util.EasyDict`` read as a dict (with no attributes to set)."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        if state:
            raise pickle.UnpicklingError("dnnlib.util.EasyDict: unexpected instance attributes")


# numpy scalars (e.g. a layer's weight_gain) are decoded without numpy: numpy.dtype(name, align, copy) with
# its state (version, byteorder, ...), and numpy.core.multiarray.scalar(dtype, raw bytes).
_STRUCT = {"f8": "d", "f4": "f", "f2": "e", "i8": "q", "i4": "i", "i2": "h", "i1": "b", "u8": "Q", "u4": "I"}
_STRUCT.update({"u2": "H", "u1": "B", "b1": "?"})


class _NumpyDType:
    __slots__ = ("byteorder", "name")

    def __init__(self, name: str, align: bool = False, copy: bool = False) -> None:
        if name not in _STRUCT:
            raise pickle.UnpicklingError(f"numpy.dtype: only numeric scalar dtypes are read, got {name!r}")
        self.name = name
        self.byteorder = "<"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "=", "|"):
            self.byteorder = "<" if state[1] in ("=", "|") else state[1]


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    name = getattr(dtype, "name", None)  # a dtype made by NEWOBJ skipped __init__ and has none
    if not isinstance(dtype, _NumpyDType) or name not in _STRUCT or not isinstance(data, bytes):
        raise pickle.UnpicklingError("numpy scalar: expected a numeric dtype and its bytes")
    try:
        return struct.unpack(getattr(dtype, "byteorder", "<") + _STRUCT[name], data)[0]
    except struct.error as error:
        raise pickle.UnpicklingError(f"numpy scalar of dtype {name}: {error}") from error


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode(text, "latin1")``: how pickle protocol 2 writes a ``bytes`` object."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode: only latin1 text is read, got encoding {encoding!r}")
    return text.encode("latin1")


# Classes stay classes (NEWOBJ needs a type); BUILD on a class finds its instance method __setstate__ and
# fails calling it unbound, and set/frozenset refuse new attributes.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _Callable(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Callable(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Callable(_rebuild_parameter),
    ("torch.storage", "_load_from_bytes"): _Callable(_load_storage),
    ("collections", "OrderedDict"): _Dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _Callable(_latin1_bytes),
    ("dnnlib.util", "EasyDict"): _Dict,
    ("dnnlib", "EasyDict"): _Dict,
    ("numpy", "dtype"): _NumpyDType,
    ("numpy.core.multiarray", "scalar"): _Callable(_numpy_scalar),
    ("numpy._core.multiarray", "scalar"): _Callable(_numpy_scalar),
    _PERSISTENCE: _Callable(_reconstruct_persistent_obj),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a StyleGAN2-ADA network pickle needs.

    Any other global (``os.system``, ``builtins.eval``, a class of the pickled project, ...) raises
    ``pickle.UnpicklingError`` naming it as ``module.name`` before anything is called. What it returns holds
    inert records in place of tensors and persistent objects: :func:`restricted_load` converts them.
    """

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # protocols 0-2 name builtins as Python 2 did
            module = "builtins"
        found = _ALLOWED.get((module, name))
        if found is None:
            hint = ""
            if module.startswith("dnnlib.tflib"):
                hint = " (a TensorFlow StyleGAN/StyleGAN2 pickle: convert it with StyleGAN2-ADA's legacy.py first)"
            raise pickle.UnpicklingError(
                f"refusing to load the global {module}.{name}: a StyleGAN2-ADA network pickle needs only "
                f"torch's tensor rebuild functions, plain containers and {'.'.join(_PERSISTENCE)}{hint}"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not used by StyleGAN2-ADA pickles")


_LEAVES = (str, bytes, int, float, complex, bool, type(None))


class _Finish:
    """The loaded object with plain containers, tensors and :class:`PersistentObject` for the records.

    Shared objects are converted once (by id) and stay shared; their size counts once per reference, so the
    result counted as a tree, what any walk over it visits, stays under :data:`MAX_NODES`.
    """

    def __init__(self) -> None:
        self.done: dict[int, tuple[Any, int]] = {}
        self.active: set[int] = set()

    def __call__(self, obj: Any, depth: int = 0) -> tuple[Any, int]:
        if isinstance(obj, _LEAVES):
            return obj, 1
        key = id(obj)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            raise pickle.UnpicklingError(f"the pickle holds a {type(obj).__name__} that contains itself")
        if depth > MAX_DEPTH:
            raise pickle.UnpicklingError(f"the pickle nests containers more than {MAX_DEPTH} deep")
        self.active.add(key)
        result = self._convert(obj, depth + 1)
        self.active.discard(key)
        if result[1] > MAX_NODES:
            raise pickle.UnpicklingError(
                f"the pickle expands to more than {MAX_NODES} objects (one object referenced many times)"
            )
        self.done[key] = result
        return result

    def _all(self, items: Any, depth: int) -> tuple[list[Any], int]:
        out, total = [], 1
        for item in items:
            value, size = self(item, depth)
            out.append(value)
            total += size
            if total > MAX_NODES:  # stop early: the items may repeat one huge object many times
                break
        return out, total

    def _convert(self, obj: Any, depth: int) -> tuple[Any, int]:
        if isinstance(obj, dict):
            flat, size = self._all((x for kv in obj.items() for x in kv), depth)
            try:
                return dict(zip(flat[::2], flat[1::2])), size
            except TypeError as error:
                raise pickle.UnpicklingError(f"a dict key of the pickle: {error}") from error
        if isinstance(obj, (list, tuple, set, frozenset)):
            items, size = self._all(obj, depth)
            try:
                return (list if isinstance(obj, list) else type(obj))(items), size
            except TypeError as error:
                raise pickle.UnpicklingError(f"a set of the pickle: {error}") from error
        if isinstance(obj, _Storage):
            return obj.storage, 1
        if isinstance(obj, _Tensor):
            storage, _ = self(obj.storage, depth)
            t = torch.empty((0,), dtype=storage.dtype).set_(storage, obj.offset, obj.size, obj.stride)
            return (t.requires_grad_(obj.requires_grad) if t.is_floating_point() else t), 2
        if isinstance(obj, _Parameter):
            data, size = self(obj.data, depth)
            return torch.nn.Parameter(data, requires_grad=obj.requires_grad), size + 1
        if isinstance(obj, _Persistent):
            state, size = self(obj.state, depth)
            return PersistentObject(obj.class_name, obj.version, state), size + 1
        raise pickle.UnpicklingError(f"the pickle holds a {type(obj).__name__} outside any call: refused")


def restricted_load(file: IO[bytes]) -> Any:
    """Unpickle ``file`` with :class:`RestrictedUnpickler` and turn its records into tensors and
    :class:`PersistentObject`; whatever goes wrong raises ``pickle.UnpicklingError``."""
    try:
        return _Finish()(RestrictedUnpickler(file).load())[0]
    except pickle.UnpicklingError:
        raise
    except Exception as error:  # a malformed file: TypeError, EOFError, RecursionError, ... from the load
        raise pickle.UnpicklingError(f"malformed pickle: {type(error).__name__}: {error}") from error
