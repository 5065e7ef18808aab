"""System samples: CPU and memory of this kernel and the machine, disk under the studio home, NVML GPUs."""

from nerf_widgets.sysmetrics.sampler import GpuSample, SystemSample, SystemSampler, gpu_samples

__all__ = ["GpuSample", "SystemSample", "SystemSampler", "gpu_samples"]
