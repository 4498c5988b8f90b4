"""Rasterizer backends with one contract (see `reference.rasterize`): "gsplat" (CUDA) and
"reference" (pure torch, any device). "auto" picks gsplat when CUDA and gsplat are there."""

from __future__ import annotations

from jaxsim.config_utils import check_choice

BACKENDS = ("auto", "reference", "gsplat")


def resolve(name: str) -> str:
    """Concrete backend name for `name` (auto -> gsplat if available, else reference)."""
    check_choice("backend", name, BACKENDS)
    if name != "auto":
        if name == "gsplat":
            from render_bridge.backends import gsplat_backend

            if not gsplat_backend.available():
                raise ValueError("backend 'gsplat' needs CUDA and the gsplat package (pip install gsplat==1.5.3)")
        return name
    from render_bridge.backends import gsplat_backend

    return "gsplat" if gsplat_backend.available() else "reference"


def get(name: str):
    """The rasterize function of a concrete backend."""
    if resolve(name) == "gsplat":
        from render_bridge.backends.gsplat_backend import rasterize
    else:
        from render_bridge.backends.reference import rasterize
    return rasterize
