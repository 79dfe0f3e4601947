"""What the checkpoint readers share: opening a path or file, and loading a state dict with a clear error."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import IO, Any, Optional, Union

import torch
from torch import nn

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]


def open_binary(path: PathOrFile, *, what: str) -> IO[bytes]:
    """``path`` opened for reading bytes (a file object is returned as it is)."""
    if isinstance(path, (str, os.PathLike)):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{what}: no file at {os.fspath(path)!r}")
        return open(path, "rb")  # the caller closes it
    if not hasattr(path, "read"):
        raise TypeError(
            f"path must be a str, an os.PathLike or a binary file object, got {type(path).__name__}"
        )
    return path


def check_stored(tensors: Iterable[torch.Tensor], *, what: str) -> None:
    """Refuse with a ValueError tensors that together hold more bytes than their storages.

    Views of one storage may each stay inside it and still, together, stand for far more data than the file
    holds (a thousand layers viewing one stored weight), and the network built to receive them be that large.
    Every entry counts, a tensor repeated under several names too: the networks read have no tied weights.
    """
    stored: dict[int, int] = {}
    claimed = 0
    for t in tensors:
        storage = t.untyped_storage()
        stored[storage.data_ptr()] = storage.nbytes()
        claimed += t.numel() * t.element_size()
    if claimed > sum(stored.values()):
        raise ValueError(
            f"{what}: the tensors hold {claimed} bytes but their storages only {sum(stored.values())} (views "
            "of one storage standing for more data than the file has)"
        )


def check_state(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, what: str) -> None:
    """Refuse with a ValueError unless ``state_dict`` has exactly ``module``'s keys and shapes.

    ``module`` may live on the meta device: the loaders build the network a file's kwargs describe there
    first, so that kwargs asking for more than the file's tensors hold allocate nothing.
    """
    own = module.state_dict()
    missing = sorted(own.keys() - state_dict.keys())
    unexpected = sorted(state_dict.keys() - own.keys())
    if missing or unexpected:
        raise ValueError(
            f"{what}: the file's tensors do not match {type(module).__name__}: missing {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}"
        )
    for key, value in state_dict.items():
        if tuple(own[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{what}: tensor {key!r} has shape {tuple(value.shape)} in the file, {type(module).__name__} "
                f"expects {tuple(own[key].shape)}"
            )


def load_into(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, what: str) -> None:
    """``module.load_state_dict(state_dict)`` (strict), with missing/unexpected keys and shapes named."""
    check_state(module, state_dict, what=what)
    module.load_state_dict(dict(state_dict), strict=True)


def to_dtype(module: nn.Module, dtype: Optional[torch.dtype]) -> Any:
    """``module`` with every floating-point parameter and buffer in ``dtype`` (unchanged for None)."""
    return module if dtype is None else module.to(dtype=dtype)
