"""A restricted unpickler for StyleGAN2-ADA's network pickles: tensors, plain containers and persistent records.

StyleGAN2-ADA pickles its networks with ``torch_utils.persistence``: each network (and each of its layers) is
stored as a call ``_reconstruct_persistent_obj(meta)``, where ``meta`` holds the source code of the module that
defined the class (``module_src``), the class name and the object's ``__dict__`` (``state``: its init kwargs,
``_parameters``, ``_buffers``, ``_modules``). Unpickled normally, that source code is executed. Here the call
returns a :class:`PersistentObject` record instead and the source is never run; tensors are rebuilt with
``torch.load(weights_only=True)`` and public tensor methods; every other global is refused.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass
from typing import IO, Any, Callable

import torch

_PERSISTENCE = ("torch_utils.persistence", "_reconstruct_persistent_obj")


@dataclass(frozen=True)
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

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The state dict of the object: its persistent parameters and buffers and those of its children."""
        out: dict[str, torch.Tensor] = {}
        skip = set(self.state.get("_non_persistent_buffers_set", ()))
        for group in ("_parameters", "_buffers"):
            for name, value in dict(self.state.get(group, {})).items():
                if value is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise pickle.UnpicklingError(
                        f"{self.class_name}.{group}[{name!r}] must be a tensor, got {type(value).__name__}"
                    )
                out[prefix + name] = value.detach()
        for name, child in dict(self.state.get("_modules", {})).items():
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


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
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
    return PersistentObject(class_name=class_name, version=int(meta.get("version", -1)), state=dict(state))


def _load_storage(data: bytes) -> Any:
    """``torch.storage._load_from_bytes``: a legacy ``torch.save`` of one storage, loaded with weights only."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"storage: expected bytes, got {type(data).__name__}")
    return torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")


def _check_no_hooks(hooks: Any) -> None:
    if hooks:
        raise pickle.UnpicklingError("tensor: backward hooks are not loaded (the file holds some)")


def _rebuild_tensor(
    storage: Any,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2``: a view of the storage (``metadata`` carries no data)."""
    _check_no_hooks(backward_hooks)
    if not isinstance(storage, torch.TypedStorage):
        raise pickle.UnpicklingError(f"tensor: expected a storage, got {type(storage).__name__}")
    offset, size, stride = int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or offset < 0 or any(v < 0 for v in size + stride):
        raise pickle.UnpicklingError(f"tensor: invalid layout offset={offset}, size={size}, stride={stride}")
    # set_ would grow a storage too small for the layout: a file must not make us allocate beyond its data.
    whole = torch.empty((0,), dtype=storage.dtype).set_(storage)
    extent = 0 if 0 in size else offset + 1 + sum((n - 1) * st for n, st in zip(size, stride))
    if extent > whole.numel():
        raise pickle.UnpicklingError(
            f"tensor: size {size}, stride {stride} and offset {offset} reach element {extent - 1} of a storage "
            f"of {whole.numel()} elements"
        )
    t = torch.empty((0,), dtype=storage.dtype).set_(storage, offset, size, stride)
    return t.requires_grad_(bool(requires_grad)) if t.is_floating_point() else t


def _rebuild_parameter(
    data: torch.Tensor, requires_grad: bool, backward_hooks: Any, state: Any = None
) -> torch.nn.Parameter:
    """``torch._utils._rebuild_parameter`` (and ``_rebuild_parameter_with_state``, whose extra Python
    attributes are dropped)."""
    _check_no_hooks(backward_hooks)
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError(f"parameter: expected a tensor, got {type(data).__name__}")
    return torch.nn.Parameter(data, requires_grad=bool(requires_grad))


class _EasyDict(dict):  # type: ignore[type-arg]
    """``dnnlib.util.EasyDict`` read as a dict (its attribute access is not needed)."""

    def __setstate__(self, state: Any) -> None:
        if state:
            raise pickle.UnpicklingError("dnnlib.util.EasyDict: unexpected instance attributes")


# numpy scalars (e.g. a layer's weight_gain) are decoded without numpy: numpy.dtype(name, align, copy) with
# its state (version, byteorder, ...), and numpy.core.multiarray.scalar(dtype, raw bytes).
_STRUCT = {"f8": "d", "f4": "f", "f2": "e", "i8": "q", "i4": "i", "i2": "h", "i1": "b", "u8": "Q", "u4": "I"}
_STRUCT.update({"u2": "H", "u1": "B", "b1": "?"})


class _NumpyDType:
    def __init__(self, name: str, align: bool = False, copy: bool = False) -> None:
        if name not in _STRUCT:
            raise pickle.UnpicklingError(f"numpy.dtype: only numeric scalar dtypes are read, got {name!r}")
        self.name = name
        self.byteorder = "<"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "=", "|"):
            self.byteorder = "<" if state[1] in ("=", "|") else state[1]


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, _NumpyDType) or not isinstance(data, bytes):
        raise pickle.UnpicklingError("numpy scalar: expected a numeric dtype and its bytes")
    try:
        return struct.unpack(dtype.byteorder + _STRUCT[dtype.name], data)[0]
    except struct.error as error:
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype.name}: {error}") from error


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode(text, "latin1")``: how pickle protocol 2 writes a ``bytes`` object."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode: only latin1 text is read, got encoding {encoding!r}")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1_bytes,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): _NumpyDType,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    _PERSISTENCE: _reconstruct_persistent_obj,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a StyleGAN2-ADA network pickle needs.

    Any other global (``os.system``, ``builtins.eval``, a class of the pickled project, ...) raises
    ``pickle.UnpicklingError`` naming it as ``module.name`` before anything is called.
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


def restricted_load(file: IO[bytes]) -> Any:
    """Unpickle ``file`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(file).load()
