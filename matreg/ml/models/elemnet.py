"""ElemNet-style network: a deep fully connected net on the 103 element fractions of a composition."""

from __future__ import annotations

import torch
from torch import nn

DEFAULT_HIDDEN = (1024, 512, 512, 256, 256, 128, 64, 32)


class ElemNet(nn.Module):
    """Plain ReLU MLP from element fractions [B, 103] to one value per composition (Jha et al. 2018)."""

    inputs = ("fractions",)

    def __init__(self, n_elements: int = 103, hidden: tuple[int, ...] = DEFAULT_HIDDEN, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_elements
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, fractions: torch.Tensor) -> torch.Tensor:
        """Predictions [B] from fractions [B, n_elements]."""
        return self.net(fractions).squeeze(-1)
