"""The baseline networks by name, and the element-property table their embeddings start from."""

from __future__ import annotations

import numpy as np

from matreg.errors import MatregError
from matreg.ml import INSTALL_HINT

try:
    import torch
    from torch import nn
except ImportError:  # the `ml` extra is not installed: say so instead of a traceback
    raise MatregError(f"PyTorch is not installed; {INSTALL_HINT}") from None

from matreg.ml.features import element_table
from matreg.ml.models.attention import CompositionAttention
from matreg.ml.models.cgcnn import CGCNN
from matreg.ml.models.elemnet import ElemNet

MODELS: dict[str, type[nn.Module]] = {"elemnet": ElemNet, "attention": CompositionAttention, "cgcnn": CGCNN}
GRAPH_MODELS = ("cgcnn",)


def element_embedding_table() -> torch.Tensor:
    """pymatgen element properties standardised per property, [104, P]: row Z is element Z, row 0 (padding) zeros."""
    table = element_table()
    std = table.std(axis=0)
    scaled = (table - table.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return torch.from_numpy(np.vstack([np.zeros((1, table.shape[1])), scaled]).astype(np.float32))


def build_model(name: str, options: dict | None = None) -> nn.Module:
    """A fresh network by name; attention and cgcnn embeddings start from the pymatgen element-property table."""
    if name not in MODELS:
        raise MatregError(f"unknown model '{name}' (choose from {', '.join(MODELS)})")
    options = dict(options or {})
    if name != "elemnet" and options.pop("element_properties", True):
        options["element_features"] = element_embedding_table()
    return MODELS[name](**options)
