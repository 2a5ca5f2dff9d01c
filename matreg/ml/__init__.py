"""Machine learning on matreg datasets: torch exports, leakage-free splits and loaders (torch is the `ml` extra)."""

from __future__ import annotations

from types import ModuleType

from matreg.errors import MatregError

INSTALL_HINT = (
    "install PyTorch's CPU build first (pip install torch --index-url https://download.pytorch.org/whl/cpu; PyPI's "
    "default build pulls several GB of CUDA libraries), or a CUDA build for a GPU, then the ml extra: "
    "pip install 'matreg[ml]'"
)


def require_torch() -> ModuleType:
    """The torch module, or a MatregError that says how to install it."""
    try:
        import torch
    except ImportError:
        raise MatregError(f"PyTorch is not installed; {INSTALL_HINT}") from None
    return torch
