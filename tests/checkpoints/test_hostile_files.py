"""Crafted files that ask the checkpoint loaders for unbounded memory or time, or to alter objects they build:
each is refused with ``pickle.UnpicklingError`` or ``ValueError`` before anything large is allocated. The
sizes here are small (the refusal is what is asserted); the same files with larger numbers are the attacks."""

from __future__ import annotations

import importlib.util
import io
import pickle
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from ganblocks import StyleGAN2Discriminator, StyleGAN2Generator
from ganblocks.checkpoints import _unpickler, load_rosinality_checkpoint, load_stylegan2_ada_pkl
from ganblocks.checkpoints._unpickler import restricted_load

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "write_stylegan2_fixtures.py"


def fixtures() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("write_stylegan2_fixtures_h", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FX = fixtures()


@pytest.fixture(scope="module")
def nets() -> dict[str, Any]:
    return FX.tiny_networks()  # type: ignore[no-any-return]


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The device type of every network the loaders build from kwargs, in order."""
    seen: list[str] = []
    for cls in (StyleGAN2Generator, StyleGAN2Discriminator):
        original: Any = cls.from_stylegan2_ada_kwargs  # bound to cls

        def spy(klass: Any, kwargs: Any, *, device: Any = None, dtype: Any = None, _f: Any = original) -> Any:
            seen.append(torch.device(device or "cpu").type)
            return _f(kwargs, device=device, dtype=dtype)

        monkeypatch.setattr(cls, "from_stylegan2_ada_kwargs", classmethod(spy))
    yield seen


def test_stylegan2_ada_kwargs_are_matched_against_the_tensors_before_building(
    tmp_path: Path, nets: dict[str, Any], builds: list[str]
) -> None:
    # w_dim=100000 in a few hundred bytes asks for ~7e10 parameters; 512 shows the same on a small scale:
    # the only network built from the lying kwargs is on the meta device.
    G, g_kwargs = nets["G"]
    path = tmp_path / "wide.pkl"
    FX.write_stylegan2_ada_pkl(path, {"G": (G, {**g_kwargs, "w_dim": 512})})
    with pytest.raises(
        ValueError,
        match=r"the pickle's 'G': tensor '.*' has shape \(8, 8\) in the file, .* expects \(8, 512\)",
    ):
        load_stylegan2_ada_pkl(path)
    assert builds == ["meta"]
    builds.clear()
    FX.write_stylegan2_ada_pkl(path, {"G": nets["G"], "D": nets["D"]})
    assert load_stylegan2_ada_pkl(path).D is not None
    assert builds == ["meta", "cpu", "meta", "cpu"]


def test_stylegan2_ada_mapping_layers_are_bounded_by_the_file(
    tmp_path: Path, nets: dict[str, Any], builds: list[str]
) -> None:
    # Each layer costs time and memory even on the meta device (10**6 layers: minutes): a count beyond the
    # file's tensors cannot match and is refused before any build.
    G, g_kwargs = nets["G"]
    path = tmp_path / "deep.pkl"
    FX.write_stylegan2_ada_pkl(path, {"G": (G, {**g_kwargs, "mapping_kwargs": {"num_layers": 10**6}})})
    with pytest.raises(
        ValueError, match=r"num_layers=1000000 is more layers than the file has tensors \(\d+\)"
    ):
        load_stylegan2_ada_pkl(path)
    assert builds == []


def test_rosinality_config_is_matched_against_the_tensors_before_building(
    tmp_path: Path, nets: dict[str, Any], builds: list[str]
) -> None:
    # style_dim is read from style.1.weight alone: the network it implies is checked on the meta device.
    path = tmp_path / "wide.pt"
    g = FX.rosinality_generator_state(nets["G_ema"][0].state_dict())
    g["style.1.weight"] = torch.zeros(8, 512, dtype=g["style.1.weight"].dtype)
    torch.save({"g_ema": g}, path)
    with pytest.raises(
        ValueError,
        match=r"the checkpoint's 'g_ema': tensor 'mapping\.fc0\.weight' has shape \(8, 512\) in the file",
    ):
        load_rosinality_checkpoint(path)
    assert builds == ["meta"]


@pytest.mark.parametrize("key", ["style.1.weight", "convs.0.conv.weight", "convs.0.conv.blur.kernel"])
def test_rosinality_tensors_larger_than_their_storage_are_refused(
    tmp_path: Path, nets: dict[str, Any], builds: list[str], key: str
) -> None:
    # A stride-0 view of one stored element claims any shape in a few bytes (torch.save keeps the view),
    # and the network read from the shapes would be as large.
    path = tmp_path / "expanded.pt"
    g = FX.rosinality_generator_state(nets["G_ema"][0].state_dict())
    g[key] = torch.zeros(1, dtype=g[key].dtype).expand(g[key].shape)
    torch.save({"g_ema": g}, path)
    with pytest.raises(
        ValueError, match=r"'g_ema': the tensors hold (\d+) bytes but their storages only"
    ) as info:
        load_rosinality_checkpoint(path)
    found = re.search(r"hold (\d+) bytes but their storages only (\d+)", str(info.value))
    assert found is not None
    claimed, stored = map(int, found.groups())
    assert claimed - stored == (g[key].numel() - 1) * g[key].element_size()  # the one stored element
    assert builds == []
    latent = torch.zeros(1).expand(8)
    torch.save(
        {"g_ema": FX.rosinality_generator_state(nets["G_ema"][0].state_dict()), "latent_avg": latent}, path
    )
    with pytest.raises(ValueError, match=r"'latent_avg' has shape \(8,\) \(8 elements\) over a storage of 1"):
        load_rosinality_checkpoint(path)


def test_views_sharing_one_storage_cannot_stand_for_more_data(
    tmp_path: Path, nets: dict[str, Any], builds: list[str]
) -> None:
    # Each view stays inside the storage, but together they claim it twice: with a thousand mapping layers
    # over one stored weight, a network a thousand times the file.
    G, g_kwargs = nets["G"]
    tree = FX.persistent_tree(G, "Generator", g_kwargs)
    fc = [tree.state["_modules"]["mapping"].state["_modules"][f"fc{i}"].state["_parameters"] for i in (0, 1)]
    # torch pickles each tensor's storage anew; a crafted file references one storage from both.
    shape = tuple(fc[0]["weight"].shape)
    rebuild, args = torch.randn(shape, dtype=fc[0]["weight"].dtype).__reduce_ex__(2)  # type: ignore[no-untyped-call]
    for params in fc:
        params["weight"] = _Reduce(rebuild, *args)
    with pytest.raises(
        ValueError, match=r"the pickle's 'G': the tensors hold \d+ bytes but their storages only"
    ):
        load_stylegan2_ada_pkl(io.BytesIO(_dumps({"G": tree})))
    g = FX.rosinality_generator_state(nets["G_ema"][0].state_dict())
    shared = g["style.1.weight"].clone()
    g["style.1.weight"], g["style.2.weight"] = shared.view(8, 8), shared.view(8, 8)
    path = tmp_path / "shared.pt"
    torch.save({"g_ema": g}, path)
    with pytest.raises(ValueError, match=r"'g_ema': the tensors hold \d+ bytes but their storages only"):
        load_rosinality_checkpoint(path)
    # The same tensor under two names (one object in the file) stands for twice its data as well.
    g["style.2.weight"] = g["style.1.weight"] = g["style.1.weight"].clone()
    torch.save({"g_ema": g}, path)
    with pytest.raises(ValueError, match=r"'g_ema': the tensors hold \d+ bytes but their storages only"):
        load_rosinality_checkpoint(path)
    assert builds == []


class _Reduce:
    """Pickles as ``fn(*args)``, followed by BUILD with ``state`` when given: how a file sets state."""

    def __init__(self, fn: Any, *args: Any, state: Any = None) -> None:
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.fn, self.args) if self.state is None else (self.fn, self.args, self.state)


def _dumps(obj: Any) -> bytes:
    with FX._stand_in_modules():
        return pickle.dumps(obj, protocol=4)


def _persistent(state: dict[str, Any], *, version: Any = 6, build: Any = None) -> _Reduce:
    meta = {"type": "class", "version": version, "module_src": "", "class_name": "Generator", "state": state}
    return _Reduce(FX._reconstruct_persistent_obj, meta, state=build)


def _tensor(**changes: Any) -> tuple[Any, tuple[Any, ...]]:
    """torch's pickling of a 4-element float tensor: (rebuild function, its arguments), with ``changes``."""
    rebuild, args = torch.zeros(4).__reduce_ex__(2)  # type: ignore[no-untyped-call]
    names = ("storage", "offset", "size", "stride", "requires_grad", "hooks")
    merged = {**dict(zip(names, args)), **changes}
    return rebuild, tuple(merged[n] for n in names)


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def _text(s: str) -> bytes:
    return b"X" + len(s.encode()).to_bytes(4, "little") + s.encode()


def test_a_shared_object_cannot_expand_exponentially() -> None:
    # Each level references the one below twice through pickle's memo: 21 levels are ~200 bytes of pickle and
    # 2**21 objects for any walk (26 levels took 106 s and 4.3 GB in plain()).
    x: Any = None
    for _ in range(21):
        x = (x, x)
    raw = _dumps({"G": _persistent({"_init_kwargs": {"x": x}})})
    assert len(raw) < 400
    with pytest.raises(pickle.UnpicklingError, match=r"expands to more than 1000000 objects"):
        restricted_load(io.BytesIO(raw))
    # The same through _modules: one child referenced as both 'a' and 'b' at every level.
    node = _persistent({})
    for _ in range(21):
        node = _persistent({"_modules": {"a": node, "b": node}})
    with pytest.raises(pickle.UnpicklingError, match=r"expands to more than 1000000 objects"):
        load_stylegan2_ada_pkl(io.BytesIO(_dumps({"G": node})))
    # Sharing below the cap is kept (converted once): 2**10 references to one tuple.
    x = ("leaf",)
    for _ in range(10):
        x = (x, x)
    shared = restricted_load(io.BytesIO(pickle.dumps(x)))
    assert shared[0] is shared[1] and shared[0][0] is shared[1][1]


def test_a_container_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(pickle.UnpicklingError, match="a list that contains itself"):
        restricted_load(io.BytesIO(pickle.dumps(loop)))
    mapping: dict[str, Any] = {}
    mapping["self"] = [mapping]
    with pytest.raises(pickle.UnpicklingError, match="a dict that contains itself"):
        load_stylegan2_ada_pkl(io.BytesIO(_dumps({"G": _persistent({"_init_kwargs": mapping})})))


def test_a_zero_stride_cannot_stand_for_more_elements_than_stored() -> None:
    # (2**24, 4) with stride (0, 1) stays inside a 4-element storage but claims 2**26 elements: reading
    # p.reshape(-1) copied them (256 MB from a few hundred bytes).
    rebuild, args = _tensor(size=(2**24, 4), stride=(0, 1))
    with pytest.raises(pickle.UnpicklingError, match=r"holds 67108864 elements, more than its storage's 4"):
        restricted_load(io.BytesIO(pickle.dumps(_Reduce(rebuild, *args))))
    rebuild, args = _tensor(
        size=(2, 2), stride=(1, 1)
    )  # overlapping rows within the storage: 4 elements, kept
    assert restricted_load(io.BytesIO(pickle.dumps(_Reduce(rebuild, *args)))).shape == (2, 2)


def test_augment_p_must_be_one_number(tmp_path: Path, nets: dict[str, Any]) -> None:
    pipe = FX.PersistentStandIn("AugmentPipe", {"xflip": 1}, "")
    pipe.state["_buffers"]["p"] = torch.zeros(4)
    path = tmp_path / "p.pkl"
    FX.write_stylegan2_ada_pkl(path, {"G_ema": nets["G_ema"]}, extra={"augment_pipe": pipe})
    with pytest.raises(ValueError, match=r"augment pipe p must be one number, got shape \(4,\)"):
        load_stylegan2_ada_pkl(path)


def test_build_cannot_change_a_tensor() -> None:
    rebuild, args = _tensor()
    # Tensor.__setstate__ with 4 items calls set_(storage, offset, size, stride): it grew a 16-byte storage
    # to whatever size the file asked for (800 MB with 2e8).
    grow = (args[0], 0, (1000,), (1,))
    with pytest.raises(pickle.UnpicklingError, match=r"sets the state of a tensor \(BUILD\): refused"):
        restricted_load(io.BytesIO(pickle.dumps(_Reduce(rebuild, *args, state=grow))))
    # With 3 items it sets requires_grad and _backward_hooks.
    hooks = (True, None, {0: "hook"})
    with pytest.raises(pickle.UnpicklingError, match=r"sets the state of a tensor \(BUILD\): refused"):
        restricted_load(io.BytesIO(pickle.dumps(_Reduce(rebuild, *args, state=hooks))))


def test_build_cannot_change_a_persistent_object() -> None:
    # A dict state wrote __dict__ past the frozen dataclass (its state replaced after the checks).
    raw = _dumps({"G": _persistent({"_init_kwargs": {}}, build={"state": [], "tensors": set()})})
    with pytest.raises(pickle.UnpicklingError, match=r"sets the state of a persistent \(BUILD\): refused"):
        load_stylegan2_ada_pkl(io.BytesIO(raw))


def test_build_cannot_change_an_admitted_global() -> None:
    defaults = _unpickler._rebuild_tensor.__defaults__
    # BUILD (None, {"__defaults__": (True, None, None)}) on the global itself: setattr on the function, which
    # would outlive the load and flip requires_grad for every later file.
    build_defaults = b"N}" + _text("__defaults__") + b"(\x88NNts\x86b0N."
    raw = b"\x80\x04" + _global("torch._utils", "_rebuild_tensor_v2") + build_defaults
    with pytest.raises(pickle.UnpicklingError, match=r"sets the state of the global _rebuild_tensor"):
        restricted_load(io.BytesIO(raw))
    assert _unpickler._rebuild_tensor.__defaults__ == defaults
    # On an admitted class: its __setstate__ replaced by builtins.set for every later EasyDict.
    setstate = _unpickler._Dict.__setstate__
    raw = b"\x80\x04" + _global("dnnlib.util", "EasyDict") + b"N}" + _text("__setstate__")
    raw += _global("builtins", "set") + b"s\x86b0N."
    with pytest.raises(pickle.UnpicklingError, match="malformed pickle: TypeError"):
        restricted_load(io.BytesIO(raw))
    assert _unpickler._Dict.__setstate__ is setstate
    raw = b"\x80\x04" + _global("builtins", "set") + b"N}" + _text("x") + b"Ns\x86b0N."
    with pytest.raises(pickle.UnpicklingError, match="malformed pickle"):
        restricted_load(io.BytesIO(raw))
    assert not hasattr(set, "x")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        # numpy.dtype made by NEWOBJ skips __init__ (AttributeError on .name)
        (_global("numpy.core.multiarray", "scalar") + _global("numpy", "dtype") + b")\x81C\x08" + bytes(8) + b"\x86R.",
         "numpy scalar: expected a numeric dtype"),
        (b"}", r"malformed pickle: EOFError"),  # truncated
        (_global("torch._utils", "_rebuild_tensor_v2") + b")R.", r"malformed pickle: TypeError"),  # wrong arity
        (_global("collections", "OrderedDict") + b".", r"holds a type outside any call"),
        # 10**5 nested lists in 200 kB: a RecursionError in any recursive walk
        (b"]" * 10**5 + b"a" * (10**5 - 1) + b".", r"nests containers more than 100 deep"),
    ],
)  # fmt: skip
def test_malformed_pickles_raise_unpickling_errors(raw: bytes, match: str) -> None:
    with pytest.raises(pickle.UnpicklingError, match=match):
        load_stylegan2_ada_pkl(io.BytesIO(b"\x80\x04" + raw))


def test_a_version_that_is_not_an_int_is_refused() -> None:
    for version in ([6], "six"):
        with pytest.raises(pickle.UnpicklingError, match="version must be an int"):
            load_stylegan2_ada_pkl(io.BytesIO(_dumps({"G": _persistent({}, version=version)})))


def test_rosinality_args_and_ada_aug_p_of_the_wrong_type(tmp_path: Path, nets: dict[str, Any]) -> None:
    g = FX.rosinality_generator_state(nets["G_ema"][0].state_dict())
    path = tmp_path / "args.pt"
    torch.save({"g_ema": g, "args": [1, 2]}, path)
    with pytest.raises(ValueError, match="'args' must be a Namespace or a dict, got list"):
        load_rosinality_checkpoint(path)
    for p, got in (([0.5], "list"), (torch.zeros(2**10), r"a tensor of shape \(1024,\)")):
        torch.save({"g_ema": g, "ada_aug_p": p}, path)
        with pytest.raises(ValueError, match=rf"'ada_aug_p' must be one number, got {got}"):
            load_rosinality_checkpoint(path)
    torch.save({"g_ema": [g]}, path)
    with pytest.raises(ValueError, match="'g_ema' must be a state dict, got list"):
        load_rosinality_checkpoint(path)


def test_rosinality_optimizer_states_are_checked(tmp_path: Path, nets: dict[str, Any]) -> None:
    path = tmp_path / "optim.pt"
    FX.write_rosinality_checkpoint(path, G=nets["G"][0], D=None, G_ema=None)
    data = torch.load(path, weights_only=True)
    # A zero-stride moment the size of its parameter: reshape would copy it (any number of keys per entry).
    entry = data["g_optim"]["state"][0]
    entry["exp_avg"] = torch.zeros(1).expand(entry["exp_avg"].shape)
    torch.save(data, path)
    with pytest.raises(ValueError, match=r"'g_optim': the tensors hold \d+ bytes but their storages only"):
        load_rosinality_checkpoint(path)
    data["g_optim"]["state"][0]["exp_avg"] = torch.zeros(entry["exp_avg"].shape)
    data["g_optim"]["param_groups"] = [{"no params": []}]
    torch.save(data, path)
    with pytest.raises(
        ValueError, match=r"'g_optim' is not a valid optimizer state dict: KeyError\('params'\)"
    ):
        load_rosinality_checkpoint(path)
