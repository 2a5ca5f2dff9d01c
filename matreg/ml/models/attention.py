"""Self-attention over the elements of a composition (Roost/CrabNet family), one token per element."""

from __future__ import annotations

import torch
from torch import nn

N_Z = 104  # row 0 is padding, row Z is the element with atomic number Z


class FractionEncoding(nn.Module):
    """CrabNet's sinusoidal encoding of an element's fraction, on a linear and a log scale, half the width each."""

    def __init__(self, d_model: int, resolution: int = 5000) -> None:
        super().__init__()
        half = d_model // 2
        self.resolution = resolution
        exponents = torch.arange(0, half, 2, dtype=torch.float32) / half
        self.register_buffer("inverse_freq", 50.0**-exponents, persistent=False)
        self.linear_scale = nn.Parameter(torch.tensor(1.0))
        self.log_scale = nn.Parameter(torch.tensor(1.0))
        self.width = d_model

    def _sinusoid(self, position: torch.Tensor) -> torch.Tensor:
        angles = position.unsqueeze(-1) * self.inverse_freq
        return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)

    def forward(self, frac: torch.Tensor) -> torch.Tensor:
        """Encodings [B, M, d_model] of fractions [B, M] (0 for padding)."""
        frac = frac.float().clamp(min=1.0 / self.resolution, max=1.0)
        linear = self._sinusoid(frac * self.resolution)
        log = self._sinusoid((0.0025 * torch.log2(frac) ** 2).clamp(max=1.0) * self.resolution)
        out = torch.cat((self.linear_scale * linear, self.log_scale * log), dim=-1)
        return nn.functional.pad(out, (0, self.width - out.shape[-1]))


def mlp(width: int, hidden: tuple[int, ...], dropout: float = 0.0) -> nn.Sequential:
    """SiLU MLP from `width` through `hidden` to one output."""
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(width, size), nn.SiLU()] + ([nn.Dropout(dropout)] if dropout else [])
        width = size
    return nn.Sequential(*layers, nn.Linear(width, 1))


class CompositionAttention(nn.Module):
    """Element tokens, a masked transformer encoder, fraction-weighted pooling and an MLP head."""

    inputs = ("element_z", "element_frac")

    def __init__(
        self,
        element_features: torch.Tensor | None = None,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 3,
        d_ff: int = 128,
        dropout: float = 0.0,
        head: tuple[int, ...] = (256, 128, 64),
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(N_Z, d_model, padding_idx=0)
        features = element_features if element_features is not None else torch.zeros(N_Z, 0)
        self.register_buffer("element_features", features.float().clone())
        self.project = nn.Linear(features.shape[1], d_model) if features.shape[1] else None
        self.fraction = FractionEncoding(d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = mlp(d_model, head, dropout)

    def tokens(self, element_z: torch.Tensor, element_frac: torch.Tensor) -> torch.Tensor:
        """Token vectors [B, M, d_model] before attention."""
        x = self.embedding(element_z)
        if self.project is not None:
            x = x + self.project(self.element_features[element_z])
        return x + self.fraction(element_frac)

    def forward(self, element_z: torch.Tensor, element_frac: torch.Tensor) -> torch.Tensor:
        """Predictions [B] from element numbers [B, M] (0 = padding) and their fractions [B, M]."""
        present = (element_z > 0).any(dim=0)
        element_z, element_frac = element_z[:, present], element_frac[:, present]
        padding = element_z == 0
        x = self.encoder(self.tokens(element_z, element_frac), src_key_padding_mask=padding)
        weights = element_frac.float().masked_fill(padding, 0.0)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)
        pooled = (self.norm(x) * weights.unsqueeze(-1)).sum(dim=1)
        return self.head(pooled).squeeze(-1)
