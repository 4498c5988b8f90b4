"""Zero-copy hand-over between JAX and torch through DLPack (no host round trip).

Both directions use the `__dlpack__(stream=...)` protocol: the consumer passes its
stream and the producer makes that stream wait for pending work, so a JAX computation
feeding torch (poses) and a torch render feeding JAX (images) stay ordered without a
device-wide synchronise. Traps handled here (see ../shared/DESIGN.md):
  - only compact row-major strides cross: non-contiguous tensors are made contiguous
    (one on-device copy) before export, and `strict=True` refuses instead;
  - a tensor that requires grad cannot be exported: it is detached;
  - conversion cannot run inside `jax.jit`: call these on concrete arrays only;
  - a JAX buffer exported to torch must not be donated afterwards (torch still reads it).
"""

from __future__ import annotations

import jax
import torch


def jax_to_torch(x: jax.Array) -> torch.Tensor:
    """View a (concrete, single-device) JAX array as a torch tensor on the same device."""
    if isinstance(x, jax.core.Tracer):
        raise TypeError("jax_to_torch got a tracer: DLPack conversion cannot happen inside jax.jit")
    return torch.from_dlpack(x)


def torch_to_jax(t: torch.Tensor, strict: bool = False) -> jax.Array:
    """View a torch tensor as a JAX array on the same device (zero copy when compact)."""
    if t.requires_grad:
        t = t.detach()
    if not t.is_contiguous():
        if strict:
            raise ValueError(f"tensor with strides {t.stride()} for shape {tuple(t.shape)} is not compact")
        t = t.contiguous()
    return jax.dlpack.from_dlpack(t)


def jax_pointer(x: jax.Array) -> int:
    """Device address of a single-device JAX array's buffer."""
    return x.unsafe_buffer_pointer()


def torch_device_of(x: jax.Array) -> torch.device:
    """The torch device that holds the same memory as JAX array x."""
    dev = next(iter(x.devices()))
    if dev.platform == "gpu":
        return torch.device("cuda", dev.id)
    return torch.device("cpu")


def default_torch_device() -> torch.device:
    """torch's view of JAX's default device: cuda:N when JAX runs on GPU N, else cpu."""
    dev = jax.devices()[0]
    return torch.device("cuda", dev.id) if dev.platform == "gpu" else torch.device("cpu")
