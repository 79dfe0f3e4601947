r"""Read StyleGAN2-ADA's network pickles (``network-snapshot-*.pkl``) without executing anything from them."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

from ..discriminators import StyleGAN2Discriminator
from ..generators import StyleGAN2Generator
from ..training.augment_pipe import AugmentPipe
from ._common import PathOrFile, check_state, check_stored, load_into, open_binary, to_dtype
from ._unpickler import PersistentObject, plain, restricted_load

_EXPECTED = {"G": "Generator", "D": "Discriminator", "G_ema": "Generator", "augment_pipe": "AugmentPipe"}


@dataclass(frozen=True, kw_only=True)
class StyleGAN2ADACheckpoint:
    """What :func:`load_stylegan2_ada_pkl` read: the networks and the settings beside them.

    Attributes:
        G: the trained generator, or None when the file has none.
        D: the discriminator, or None.
        G_ema: the generator's moving average (the one to sample from), or None.
        augment_kwargs: the init kwargs of StyleGAN2-ADA's ``AugmentPipe`` (``xflip``, ``rotate90``, ...), as
            a plain dict, or None when the file has no augment pipe.
        augment_p: the augmentation probability ``p`` reached in training, or None.
        training_set_kwargs: the dataset settings recorded by the training loop, or None.
    """

    G: Optional[StyleGAN2Generator]
    D: Optional[StyleGAN2Discriminator]
    G_ema: Optional[StyleGAN2Generator]
    augment_kwargs: Optional[dict[str, Any]]
    augment_p: Optional[float]
    training_set_kwargs: Optional[dict[str, Any]]

    def augment_pipe(self) -> Optional[AugmentPipe]:
        """The file's augment pipe as a :class:`ganblocks.AugmentPipe` at the ``p`` it reached, or None.

        A new module each call; ``AugmentPipe(**augment_kwargs)`` takes StyleGAN2-ADA's keywords as they are.
        """
        if self.augment_kwargs is None:
            return None
        pipe = AugmentPipe(**self.augment_kwargs)
        if self.augment_p is not None:
            pipe.p.fill_(self.augment_p)
        return pipe


def _record(data: dict[str, Any], key: str) -> Optional[PersistentObject]:
    obj = data.get(key)
    if obj is None:
        return None
    if not isinstance(obj, PersistentObject) or obj.class_name != _EXPECTED[key]:
        got = obj.class_name if isinstance(obj, PersistentObject) else type(obj).__name__
        raise ValueError(f"the pickle's {key!r} must be a persistent {_EXPECTED[key]}, got {got}")
    if obj.version != 6:
        raise ValueError(
            f"the pickle's {key!r} was written by torch_utils.persistence version {obj.version}; StyleGAN2-ADA "
            "writes version 6"
        )
    return obj


def _build(
    cls: Union[type[StyleGAN2Generator], type[StyleGAN2Discriminator]],
    obj: PersistentObject,
    key: str,
    device: Optional[Union[torch.device, str]],
    dtype: Optional[torch.dtype],
) -> Any:
    kwargs, tensors, what = obj.init_kwargs(), obj.tensors(), f"the pickle's {key!r}"
    check_stored(tensors.values(), what=what)
    # Even on the meta device each layer costs time and memory: the mapping's layer count is the one kwarg
    # that multiplies modules (a resolution adds blocks only with its log), and each layer stores tensors.
    mapping = kwargs.get("mapping_kwargs")
    layers = mapping.get("num_layers") if isinstance(mapping, dict) else None
    if isinstance(layers, int) and layers > len(tensors):
        raise ValueError(
            f"{what}: mapping_kwargs num_layers={layers} is more layers than the file has tensors ({len(tensors)})"
        )
    try:
        # The kwargs alone could ask for any size: match them against the file's tensors on the meta device
        # (no memory) before building for real.
        shapes = cls.from_stylegan2_ada_kwargs(kwargs, device="meta", dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}: {error}") from error
    check_state(shapes, tensors, what=what)
    module = cls.from_stylegan2_ada_kwargs(kwargs, device=device, dtype=dtype)
    load_into(module, tensors, what=what)
    return to_dtype(module, dtype)


def load_stylegan2_ada_pkl(
    path: PathOrFile,
    *,
    device: Optional[Union[torch.device, str]] = None,
    dtype: Optional[torch.dtype] = None,
) -> StyleGAN2ADACheckpoint:
    r"""Load a StyleGAN2-ADA network pickle into ganblocks networks, executing nothing from the file.

    StyleGAN2-ADA pickles each network with the source code of the module that defined it, and unpickling
    it normally executes that code (and needs ``dnnlib``, ``torch_utils`` and its custom CUDA ops). Here a
    restricted unpickler admits only torch's tensor rebuild functions (storages are read with
    ``torch.load(weights_only=True)``), plain containers (``OrderedDict``, ``set``, ``dnnlib.util.EasyDict``
    read as a dict), numpy scalars, and the persistence hook, which is replaced by a reader of its record:
    the class name, the init kwargs and the parameters and buffers. The recorded source code is never
    executed; any other global raises ``pickle.UnpicklingError`` naming it before anything runs.

    ``G``, ``G_ema`` and ``D`` are built with :meth:`StyleGAN2Generator.from_stylegan2_ada_kwargs` and
    :meth:`StyleGAN2Discriminator.from_stylegan2_ada_kwargs` from their recorded init kwargs, and their
    state dicts (StyleGAN2-ADA's keys, noise buffers and ``w_avg`` included) are loaded strictly. They come
    in training mode with gradients on, ready to train further; call ``.eval()`` to sample. The augment
    pipe's init kwargs and probability are returned as plain values, for
    :class:`~ganblocks.training.AugmentPipe`.

    Args:
        path: the ``.pkl`` file (a path or a binary file object).
        device: where to put the networks (default: the CPU).
        dtype: the dtype of the networks' floating-point parameters and buffers (default: float32, the
            files' dtype), e.g. ``torch.float64`` to compare with a reference.

    Returns:
        A :class:`StyleGAN2ADACheckpoint` (``G``, ``D``, ``G_ema``, ``augment_kwargs``, ``augment_p``,
        ``training_set_kwargs``); an entry the file lacks is None.

    A file cannot make the loader allocate beyond what it stores: the networks its init kwargs describe are
    built on the meta device and their state-dict keys and shapes compared with the file's tensors before they
    are built for real; tensors may not hold more data than their storages; the pickle may not set the
    state of what it built (BUILD), contain itself or expand past a million objects through shared references.

    Raises:
        pickle.UnpicklingError: the file references a global other than those above (named in the message), or
            is malformed (the original error chained).
        ValueError: a network's class, init kwargs or tensors are not StyleGAN2-ADA's, or do not match.
        FileNotFoundError: no file at ``path``.

    Example:
        >>> from ganblocks.checkpoints import load_stylegan2_ada_pkl
        >>> ckpt = load_stylegan2_ada_pkl("ffhq.pkl", device="cuda")  # doctest: +SKIP
        >>> G = ckpt.G_ema.eval()  # doctest: +SKIP
        >>> images = G(torch.randn(4, G.z_dim, device="cuda"), None, truncation_psi=0.7)  # doctest: +SKIP

    Reference:
        Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
        (``stylegan2-ada-pytorch``: ``legacy.load_network_pkl``, ``torch_utils/persistence.py``).
    """
    f = open_binary(path, what="load_stylegan2_ada_pkl")
    try:
        data = restricted_load(f)
    finally:
        if f is not path:
            f.close()
    if not isinstance(data, dict):
        raise ValueError(f"a StyleGAN2-ADA pickle holds a dict of networks, got {type(data).__name__}")
    records = {key: _record(data, key) for key in _EXPECTED}
    if records["G"] is None and records["D"] is None and records["G_ema"] is None:
        raise ValueError(f"the pickle holds none of 'G', 'D', 'G_ema' (keys: {sorted(map(str, data))})")
    nets: dict[str, Any] = {}
    for key, cls in (("G", StyleGAN2Generator), ("D", StyleGAN2Discriminator), ("G_ema", StyleGAN2Generator)):
        obj = records[key]
        nets[key] = None if obj is None else _build(cls, obj, key, device, dtype)
    augment_kwargs: Optional[dict[str, Any]] = None
    augment_p: Optional[float] = None
    pipe = records["augment_pipe"]
    if pipe is not None:
        augment_kwargs = pipe.init_kwargs()
        p = pipe.tensors().get("p")
        if p is not None and p.numel() != 1:
            raise ValueError(f"the pickle's augment pipe p must be one number, got shape {tuple(p.shape)}")
        augment_p = None if p is None else float(p.reshape(()))
    training_set = data.get("training_set_kwargs")
    if training_set is not None and not isinstance(training_set, dict):
        raise pickle.UnpicklingError(f"training_set_kwargs must be a dict, got {type(training_set).__name__}")
    return StyleGAN2ADACheckpoint(
        G=nets["G"],
        D=nets["D"],
        G_ema=nets["G_ema"],
        augment_kwargs=augment_kwargs,
        augment_p=augment_p,
        training_set_kwargs=None if training_set is None else plain(training_set),
    )
