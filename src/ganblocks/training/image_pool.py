r"""Experience replay for the discriminator: a pool of past fakes (Shrivastava et al. 2017, CycleGAN)."""

from __future__ import annotations

from typing import Any, Optional

import torch

from .._checks import check_float_tensor, check_int, check_probability


class ImagePool:
    r"""A buffer of past generated images that the discriminator sees instead of (some of) the newest ones.

    CycleGAN's ``util/image_pool.py``: while the pool holds fewer than ``pool_size`` images, each incoming
    image is stored and returned unchanged. Once it is full, each image independently, with probability
    ``swap_probability`` (0.5), is stored in place of a uniformly chosen stored image, and the image it
    replaces is returned instead; otherwise the image itself is returned:

    .. math::
        y_i = \begin{cases} P_j, \; P_j \leftarrow x_i & \text{with probability } p,
        \; j \sim U\{0, \dots, K-1\} \\ x_i & \text{otherwise} \end{cases}

    Images are processed in batch order, so a later image of a batch can receive one stored by an earlier
    image of the same batch, exactly as in the reference loop. Nothing synchronises with the device: the
    decisions are drawn as tensors and applied with ``torch.where``, one small step per image of a batch.

    The returned batch is detached (it feeds the discriminator's step, never the generator's) and has the
    shape of the input. The pool is stored as one preallocated tensor ``(pool_size, *image_shape)`` on the
    device and in the dtype of the first batch; later batches must match them. A pool filled under
    ``torch.inference_mode`` keeps working in training: its storage is copied out of inference mode on
    the first query outside it.

    Args:
        pool_size: :math:`K`, the number of stored images (50 in CycleGAN). 0 disables the pool: ``query``
            returns its input (detached).
        swap_probability: :math:`p`, the chance that a full pool returns a stored image (0.5).

    Example:
        >>> import torch
        >>> from ganblocks.training import ImagePool
        >>> pool = ImagePool(2)
        >>> g = torch.Generator().manual_seed(0)
        >>> pool.query(torch.tensor([[1.0], [2.0]]), generator=g).flatten().tolist()  # stored and returned
        [1.0, 2.0]
        >>> out = pool.query(torch.tensor([[3.0], [4.0], [5.0]]), generator=g)
        >>> len(pool), sorted(out.flatten().tolist() + pool.images().flatten().tolist())
        (2, [1.0, 2.0, 3.0, 4.0, 5.0])

    Reference:
        Shrivastava et al., "Learning from Simulated and Unsupervised Images through Adversarial Training",
        CVPR 2017 (the history buffer); Zhu et al., "Unpaired Image-to-Image Translation using
        Cycle-Consistent Adversarial Networks" (CycleGAN), ICCV 2017.
    """

    def __init__(self, pool_size: int = 50, *, swap_probability: float = 0.5) -> None:
        self.pool_size = check_int("pool_size", pool_size, minimum=0)
        self.swap_probability = check_probability("swap_probability", swap_probability)
        self._pool: Optional[torch.Tensor] = None
        self._count = 0

    def __len__(self) -> int:
        """How many images the pool holds (at most ``pool_size``)."""
        return self._count

    def images(self) -> torch.Tensor:
        """The stored images ``(len(pool), *image_shape)`` (a view, not a copy); empty before any query."""
        if self._pool is None:
            return torch.empty(0)
        return self._pool[: self._count]

    def _check(self, images: torch.Tensor) -> None:
        pool = self._pool
        if pool is None:
            return
        if images.shape[1:] != pool.shape[1:]:
            raise ValueError(
                f"images must have the image shape {tuple(pool.shape[1:])} of the pooled images (after the "
                f"batch dimension), got shape {tuple(images.shape)}"
            )
        if images.dtype != pool.dtype or images.device != pool.device:
            raise ValueError(
                f"images must have the pool's dtype {pool.dtype} and device {pool.device}, got "
                f"{images.dtype} on {images.device}"
            )

    @torch.no_grad()
    def query(self, images: torch.Tensor, *, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Store ``images`` and return a batch of the same shape mixing them with past ones.

        Args:
            images: generated images ``(N, *image_shape)``, floating point.
            generator: a ``torch.Generator`` on the images' device for the swap decisions and slots.

        Returns:
            ``(N, *image_shape)``, detached.
        """
        images = check_float_tensor("images", images)
        if images.ndim < 1:
            raise ValueError(f"images must have a batch dimension, got shape {tuple(images.shape)}")
        images = images.detach()
        if self.pool_size == 0 or images.shape[0] == 0:
            return images
        self._check(images)
        if self._pool is not None and self._pool.is_inference() and not torch.is_inference_mode_enabled():
            # Filled under torch.inference_mode: an inference tensor cannot be written outside it.
            self._pool = self._pool.clone()
        if self._pool is None:
            self._pool = images.new_empty((self.pool_size, *images.shape[1:]))
        pool = self._pool
        n = images.shape[0]
        fill = min(n, self.pool_size - self._count)
        if fill > 0:
            pool[self._count : self._count + fill] = images[:fill]
            self._count += fill
        rest = n - fill
        if rest == 0:
            return images.clone()
        out = images.clone()
        swap = torch.rand(rest, device=images.device, generator=generator) < self.swap_probability
        slots = torch.randint(self.pool_size, (rest,), device=images.device, generator=generator)
        for k in range(rest):
            # One-element index tensors, not ints: no host synchronisation; index_select copies the stored
            # image before index_copy_ overwrites its slot.
            idx, i = slots[k : k + 1], fill + k
            stored, new = pool.index_select(0, idx), images[i : i + 1]
            out[i : i + 1] = torch.where(swap[k], stored, new)
            pool.index_copy_(0, idx, torch.where(swap[k], new, stored))
        return out

    def state_dict(self) -> dict[str, Any]:
        """The settings and the stored images, for a checkpoint."""
        return {
            "pool_size": self.pool_size,
            "swap_probability": self.swap_probability,
            "images": self.images().clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s result (the pool size must match)."""
        if state.get("pool_size") != self.pool_size:
            raise ValueError(
                f"state['pool_size'] must equal this pool's pool_size={self.pool_size}, got "
                f"{state.get('pool_size')!r}"
            )
        stored = check_float_tensor("state['images']", state["images"])
        if stored.shape[0] > self.pool_size:
            raise ValueError(
                f"state['images'] must hold at most pool_size={self.pool_size} images, got shape "
                f"{tuple(stored.shape)}"
            )
        self.swap_probability = check_probability("state['swap_probability']", state["swap_probability"])
        self._pool = None
        self._count = 0
        if stored.shape[0] > 0:
            self._pool = stored.new_empty((self.pool_size, *stored.shape[1:]))
            self._pool[: stored.shape[0]] = stored
            self._count = stored.shape[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pool_size={self.pool_size}, swap_probability={self.swap_probability})"
