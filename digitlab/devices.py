"""Where a run computes: ``--device auto/cpu/cuda/mps`` resolved once per run.

``auto`` takes CUDA if there is a GPU, else Apple's MPS, else the CPU. Asking
for a device that is not there is a :class:`~digitlab.errors.UserError` naming
what is available. :func:`autocast_dtype` says which reduced precision a
device runs the training forward passes in, :func:`set_threads` applies to the
CPU only, and :func:`describe` is what every ``metrics.json`` records.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from digitlab.errors import UserError

DEVICES = ("auto", "cpu", "cuda", "mps")

# PyTorch starts with one intra-op thread per physical core; remember that
# before anything changes it (hyper-threads rarely help convolutions).
_PHYSICAL_CORES = torch.get_num_threads()


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def available() -> list[str]:
    """The concrete devices this machine has, CPU last."""
    found = ["cuda"] if torch.cuda.is_available() else []
    return [*found, *(["mps"] if _mps_available() else []), "cpu"]


def resolve(name: str | torch.device = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda``, ``cuda:1`` or ``mps`` -> a device that exists here."""
    kind = str(name).split(":")[0]
    if kind not in DEVICES:
        raise UserError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}.")
    if kind == "auto":
        return torch.device(available()[0])
    if kind not in available():
        raise UserError(f"no {kind.upper()} device on this machine for device {str(name)!r}; "
                        f"available: {', '.join(available())}, or auto.")
    device = torch.device(name)
    if kind == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {str(name)!r} does not exist: this machine has "
                        f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                        f"cuda:{torch.cuda.device_count() - 1}.")
    return device


def autocast_dtype(device: torch.device, precision: str = "bf16") -> torch.dtype | None:
    """The autocast dtype of the training forward passes, or None for plain float32.

    ``precision="bf16"`` asks for bfloat16; it is used where the device runs it
    natively: CPUs with AVX-512 BF16 or AMX instructions, CUDA GPUs that report
    bf16 support, and MPS on macOS 14 or later. Elsewhere the run stays in float32:
    on a CPU without those instructions bfloat16 is emulated and several times
    slower than float32 (``benchmarks/mnist_cnn.py`` measures both).
    """
    if precision == "fp32":
        return None
    if precision != "bf16":
        raise UserError(f"unknown precision {precision!r}; choose bf16 or fp32.")
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_bf16() else None
    if device.type == "cuda":  # native bfloat16 from compute capability 8.0 (Ampere) on
        return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else None
    if device.type == "mps":
        newer = getattr(torch.backends.mps, "is_macos_or_newer", None)
        return torch.bfloat16 if newer is not None and newer(14, 0) else None
    return None


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (GPUs run asynchronously), e.g. before timing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def make_deterministic(device: torch.device) -> None:
    """Ask cuDNN for deterministic algorithms on CUDA: the same seed then gives the same
    numbers there too, except for the few CUDA kernels that add in a varying order."""
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def set_threads(n: int | None = None, device: torch.device | None = None) -> int | None:
    """Use ``n`` intra-op CPU threads (default: one per physical core this process may
    use); on a GPU the setting does not apply and None is returned."""
    if device is not None and device.type != "cpu":
        return None
    if n is None:
        has_affinity = hasattr(os, "sched_getaffinity")
        usable = len(os.sched_getaffinity(0)) if has_affinity else os.cpu_count() or 1
        n = min(_PHYSICAL_CORES, usable)
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def device_name(device: torch.device) -> str:
    """The hardware behind ``device``: the GPU model, or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple {platform.machine()} GPU (MPS)"
    return _cpu_model() or platform.processor() or platform.machine()


def _cpu_model() -> str | None:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def describe(device: torch.device) -> dict:
    """What ``metrics.json`` records about the device of a run."""
    info = {"device": str(device), "device_name": device_name(device)}
    if device.type == "cpu":
        info["threads"] = torch.get_num_threads()
    return info


def peak_memory(device: torch.device) -> dict:
    """Peak memory of this process: resident set size (MiB), and GPU memory on CUDA."""
    import resource

    # ru_maxrss is in KiB on Linux and bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mib = rss / 2**20 if platform.system() == "Darwin" else rss / 2**10
    out = {"peak_rss_mib": rss_mib}
    if device.type == "cuda":
        out["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out
