"""load_stylegan2_ada_pkl on files written by scripts/write_stylegan2_fixtures.py: the same networks come back,
they train further, and nothing from the file runs (forbidden globals, the recorded module source)."""

from __future__ import annotations

import importlib.util
import io
import pickle
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import assert_close

from ganblocks import AugmentPipe, StyleGAN2Discriminator, StyleGAN2Generator
from ganblocks.checkpoints import StyleGAN2ADACheckpoint, load_stylegan2_ada_pkl
from ganblocks.penalties import PathLengthPenalty, R1Penalty

F64 = torch.float64
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "write_stylegan2_fixtures.py"


def fixtures() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("write_stylegan2_fixtures", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FX = fixtures()


@pytest.fixture(scope="module")
def nets() -> dict[str, Any]:
    return FX.tiny_networks()  # type: ignore[no-any-return]


class _Inert(dict):  # type: ignore[type-arg]
    """Whatever a global is called with, an inert placeholder (so listing the globals runs nothing)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        pass


def _globals(path: Path) -> set[str]:
    """The ``module.name`` of every global the pickle references; each resolves to an inert placeholder."""
    found: set[str] = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            found.add(f"{module}.{name}")
            return _Inert

    with open(path, "rb") as f:
        Recorder(f).load()
    return found


def test_the_fixture_has_the_structure_of_a_snapshot(tmp_path: Path, nets: dict[str, Any]) -> None:
    path = tmp_path / "snapshot.pkl"
    FX.write_stylegan2_ada_pkl(path, nets, augment_kwargs={"xflip": 1})
    refs = _globals(path)
    # What a real snapshot references (numpy's module is numpy.core before numpy 2, numpy._core after).
    expected = {
        "torch_utils.persistence._reconstruct_persistent_obj",
        "dnnlib.util.EasyDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch.storage._load_from_bytes",
        "collections.OrderedDict",
    }
    numpy = {r for r in refs if r.startswith("numpy")}
    assert refs - numpy == expected
    assert numpy <= {"numpy.dtype", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"}


@pytest.mark.parametrize("dtype", [F64, None])
def test_networks_come_back_with_the_same_outputs(
    tmp_path: Path, nets: dict[str, Any], dtype: torch.dtype | None
) -> None:
    path = tmp_path / "snapshot.pkl"
    FX.write_stylegan2_ada_pkl(
        path, nets, augment_kwargs={"xflip": 1, "rotate90": 1, "xint": 1}, augment_p=0.25
    )
    ckpt = load_stylegan2_ada_pkl(path, dtype=dtype)
    assert isinstance(ckpt, StyleGAN2ADACheckpoint)
    assert isinstance(ckpt.G, StyleGAN2Generator) and isinstance(ckpt.G_ema, StyleGAN2Generator)
    assert isinstance(ckpt.D, StyleGAN2Discriminator)
    assert ckpt.augment_kwargs == {"xflip": 1, "rotate90": 1, "xint": 1}
    assert ckpt.augment_p == 0.25
    pipe = ckpt.augment_pipe()
    assert isinstance(pipe, AugmentPipe) and pipe.enabled == ("xflip", "rotate90", "xint")
    assert float(pipe.p) == 0.25
    assert ckpt.training_set_kwargs == {"class_name": "training.dataset.ImageFolderDataset"}
    loaded_dtype = torch.float32 if dtype is None else dtype
    for key in ("G", "G_ema", "D"):
        source, loaded = nets[key][0], getattr(ckpt, key)
        assert loaded.training and all(p.requires_grad for p in loaded.parameters())
        theirs = loaded.state_dict()
        for name, t in source.state_dict().items():  # noise_const, w_avg and the filters included
            assert theirs[name].dtype == (loaded_dtype if t.is_floating_point() else t.dtype), name
            assert torch.equal(theirs[name], t.to(theirs[name].dtype)), name
    if dtype is not None:
        z = torch.randn(3, 8, dtype=F64)
        for key in ("G", "G_ema"):
            source, loaded = nets[key][0].eval(), getattr(ckpt, key).eval()
            expected = source(z, None, noise_mode="const", truncation_psi=0.7)
            assert_close(loaded(z, None, noise_mode="const", truncation_psi=0.7), expected)
            for seed in (0, 1):  # random noise: the same draws give the same images
                torch.manual_seed(seed)
                expected = source(z, None)
                torch.manual_seed(seed)
                assert_close(loaded(z, None), expected)
        x = torch.randn(4, 3, 16, 16, dtype=F64)
        assert_close(ckpt.D(x, None), nets["D"][0](x, None))


@pytest.mark.parametrize("protocol", [2, 3, 5])
def test_other_pickle_protocols(tmp_path: Path, nets: dict[str, Any], protocol: int) -> None:
    # Python 3.7 wrote protocol 3 by default (sets as builtins.set); protocol 2 writes bytes as _codecs.encode.
    path = tmp_path / "snapshot.pkl"
    FX.write_stylegan2_ada_pkl(path, {"G_ema": nets["G_ema"]}, protocol=protocol)
    ckpt = load_stylegan2_ada_pkl(path, dtype=F64)
    assert ckpt.G_ema is not None
    for name, t in nets["G_ema"][0].state_dict().items():
        assert torch.equal(ckpt.G_ema.state_dict()[name], t), name


def test_loaded_networks_train_further(tmp_path: Path, nets: dict[str, Any]) -> None:
    path = tmp_path / "snapshot.pkl"
    FX.write_stylegan2_ada_pkl(path, {k: nets[k] for k in ("G", "D")})
    ckpt = load_stylegan2_ada_pkl(path, dtype=F64)
    assert ckpt.G_ema is None and ckpt.augment_kwargs is None and ckpt.augment_p is None
    G, D = ckpt.G, ckpt.D
    assert G is not None and D is not None
    real = torch.randn(4, 3, 16, 16, dtype=F64).requires_grad_(True)
    R1Penalty(gamma=10.0)(D, real).backward()
    ws = G.mapping(torch.randn(4, 8, dtype=F64), None)
    PathLengthPenalty(batch_shrink=2)(G.synthesis, ws).backward()
    for net in (G, D):
        grads = {n: p.grad for n, p in net.named_parameters()}
        assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
        reached = [n for n, g in grads.items() if g is not None and g.abs().sum() > 0]
        assert len(reached) > len(grads) // 2  # the penalties reach the weights, not only zero terms
    before = D(real.detach(), None)
    torch.optim.Adam(D.parameters(), lr=1e-2).step()
    assert not torch.allclose(D(real.detach(), None), before)


class _Call:
    """Pickles as the call ``fn(*args)``: how a malicious file runs code on load."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.fn, self.args)


def test_a_forbidden_global_is_refused_without_running_it(tmp_path: Path, nets: dict[str, Any]) -> None:
    marker = tmp_path / "ran"
    # Protocol 0 by hand: os.system("touch <marker>"), the classic payload.
    raw = f"cos\nsystem\n(V touch {marker}\ntR.".encode()
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load the global os\.system"):
        load_stylegan2_ada_pkl(io.BytesIO(raw))
    # Inside a network's recorded init kwargs: builtins.eval of code that would create the marker.
    path = tmp_path / "evil.pkl"
    code = f"open({str(marker)!r}, 'w').close()"
    G, g_kwargs = nets["G"]
    FX.write_stylegan2_ada_pkl(path, {"G": (G, {**g_kwargs, "payload": _Call(eval, code)})})
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load the global builtins\.eval"):
        load_stylegan2_ada_pkl(path)
    assert not marker.exists()
    assert eval(compile(code, "<check>", "eval")) is None and marker.exists()  # the payload itself works


def test_the_recorded_module_source_is_never_executed(tmp_path: Path, nets: dict[str, Any]) -> None:
    marker = tmp_path / "ran"
    source = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('executed')\n"
    path = tmp_path / "snapshot.pkl"
    FX.write_stylegan2_ada_pkl(path, {"G_ema": nets["G_ema"]}, module_src=source)
    assert source.encode() in path.read_bytes()  # the file carries the source...
    ckpt = load_stylegan2_ada_pkl(path, dtype=F64)
    assert ckpt.G_ema is not None and ckpt.G is None and ckpt.D is None
    assert not marker.exists()  # ...and loading did not run it
    exec(source)
    assert marker.exists()


def test_errors(tmp_path: Path, nets: dict[str, Any]) -> None:
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_stylegan2_ada_pkl(tmp_path / "missing.pkl")
    tf = b"cdnnlib.tflib.network\nNetwork\n)\x81."
    with pytest.raises(pickle.UnpicklingError, match=r"dnnlib\.tflib\.network\.Network.*legacy\.py"):
        load_stylegan2_ada_pkl(io.BytesIO(tf))
    with pytest.raises(ValueError, match=r"holds none of 'G', 'D', 'G_ema'"):
        load_stylegan2_ada_pkl(io.BytesIO(pickle.dumps({"training_set_kwargs": {}})))
    with pytest.raises(ValueError, match="a StyleGAN2-ADA pickle holds a dict of networks, got list"):
        load_stylegan2_ada_pkl(io.BytesIO(pickle.dumps([1])))
    path = tmp_path / "swapped.pkl"
    FX.write_stylegan2_ada_pkl(path, {"G": (nets["D"][0], nets["D"][1])})  # a Discriminator recorded as G
    with pytest.raises(ValueError, match="the pickle's 'G'"):
        load_stylegan2_ada_pkl(path)
    G, g_kwargs = nets["G"]
    wrong = {**g_kwargs, "mapping_kwargs": {"num_layers": 3}}
    FX.write_stylegan2_ada_pkl(path, {"G": (G, wrong)})
    with pytest.raises(ValueError, match=r"the pickle's 'G': the file's tensors do not match .*mapping\.fc2"):
        load_stylegan2_ada_pkl(path)


def test_a_tensor_reaching_past_its_storage_is_refused() -> None:
    # torch's Tensor.set_ would grow the storage: a file could make the loader allocate without bound.
    rebuild, args = torch.zeros(4).__reduce_ex__(2)  # type: ignore[no-untyped-call]
    storage, hooks = args[0], args[5]
    for size, stride, offset in (((10**9,), (1,), 0), ((2, 2), (3, 1), 0), ((4,), (1,), 1)):
        data = pickle.dumps({"G": _Call(rebuild, storage, offset, size, stride, False, hooks)})
        with pytest.raises(pickle.UnpicklingError, match=r"reach element \d+ of a storage of 4 elements"):
            load_stylegan2_ada_pkl(io.BytesIO(data))
    data = pickle.dumps({"G": _Call(rebuild, storage, 0, (2,), (-1,), False, hooks)})
    with pytest.raises(pickle.UnpicklingError, match="invalid layout"):
        load_stylegan2_ada_pkl(io.BytesIO(data))
