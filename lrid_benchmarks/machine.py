"""The machine a benchmark ran on, recorded with every result file."""

from __future__ import annotations

import os
import platform
import sys

from lrid_analysis.evaluate import run_metadata

__all__ = ["machine"]


def machine(device=None):
    """The machine, its load, the library versions and (optionally) the torch device.

    Parameters
    ----------
    device : str or torch.device, optional
        The device a torch benchmark ran on; adds torch's threads and CPU
        capability, and the GPU's name on CUDA.

    Returns
    -------
    dict
        ``platform``, ``processor``, ``cpu_count``, ``usable_cpus``,
        ``load_average_1min`` (at the call), ``python``, ``packages`` (see
        :func:`lrid_analysis.evaluate.run_metadata`) and, with a device,
        ``device``, ``torch``, ``torch_threads``, ``cpu_capability`` and
        ``cuda_device``.
    """
    meta = run_metadata()
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": meta["python"],
        "packages": meta["packages"],
    }
    if device is not None:
        import torch

        device = torch.device(device)
        info.update(device=str(device), torch=torch.__version__, torch_threads=torch.get_num_threads(),
                    cpu_capability=torch.backends.cpu.get_cpu_capability())
        if device.type == "cuda":
            info["cuda_device"] = torch.cuda.get_device_name(device)
    elif "torch" in sys.modules:
        info["torch"] = sys.modules["torch"].__version__
    return info
