"""The device rule shared by jobs (what they reserve) and the engine (where it trains), and the memory probe."""

from __future__ import annotations

import psutil
import pytest
import torch

from nerf_widgets.core.devices import choose_device, cuda_devices, device_memory, no_cuda_reason, pick_device
from nerf_widgets.core.errors import ResourceUnavailableError, ValidationError

no_gpu_here = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a visible GPU")


@pytest.mark.parametrize(("requested", "count", "device"), [
    ("auto", 0, "cpu"), (None, 0, "cpu"), ("auto", 2, "cuda:0"), ("cpu", 2, "cpu"), ("cpu", 0, "cpu"),
    ("cuda", 1, "cuda:0"), ("CUDA", 1, "cuda:0"), ("cuda:1", 2, "cuda:1"),
])
def test_choose_device(requested: str | None, count: int, device: str) -> None:
    assert choose_device(requested, count) == device


def test_a_gpu_request_that_cannot_be_met_says_what_is_missing() -> None:
    with pytest.raises(ResourceUnavailableError, match=r"^No CUDA device is visible: no driver\. Train with device='cpu'"):
        choose_device("cuda", 0, "no driver")
    with pytest.raises(ResourceUnavailableError, match=r"cuda:2 is not visible: PyTorch sees 2 CUDA device\(s\), "
                                                       r"cuda:0\.\.cuda:1"):
        choose_device("cuda:2", 2)


@pytest.mark.parametrize("bad", ["tpu", "cuda:x", "", "gpu0", "cuda:-1"])
def test_unknown_device_names_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="Unknown device"):
        choose_device(bad, 1)


def test_this_machine_uses_the_gpu_pytorch_sees_else_the_cpu() -> None:
    assert pick_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert [d.index for d in cuda_devices()] == list(range(torch.cuda.device_count() if torch.cuda.is_available() else 0))


@no_gpu_here
def test_cuda_on_this_machine_fails_with_why_and_no_nvml_message() -> None:
    with pytest.raises(ResourceUnavailableError, match="No CUDA device is visible") as err:
        pick_device("cuda")
    assert no_cuda_reason() in str(err.value) and "NVML" not in str(err.value)
    if torch.version.cuda is None:
        assert f"this PyTorch ({torch.__version__}) is a CPU-only build" in str(err.value)
    with pytest.raises(ResourceUnavailableError, match="No CUDA device is visible"):
        device_memory("cuda:0")


def test_cpu_memory_is_what_psutil_reports() -> None:
    available, total = device_memory("cpu")
    assert total == psutil.virtual_memory().total
    assert 0 < available <= total and abs(available - psutil.virtual_memory().available) < total // 10


@pytest.mark.gpu
def test_gpu_memory_comes_from_torch_cuda() -> None:
    free, total = device_memory("cuda:0")
    props = torch.cuda.get_device_properties(0)
    assert total == props.total_memory and 0 < free <= total
    (device,) = [d for d in cuda_devices() if d.index == 0]
    assert device.capability == torch.cuda.get_device_capability(0) and device.uuid.startswith("GPU-")
