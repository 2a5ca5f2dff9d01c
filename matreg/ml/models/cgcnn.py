"""CGCNN-style crystal graph network (Xie & Grossman 2018): gated convolutions over neighbour edges, mean pooling."""

from __future__ import annotations

import torch
from torch import nn

N_Z = 104  # row 0 unused, row Z is the element with atomic number Z


class GaussianDistance(nn.Module):
    """Expand distances [E] on Gaussians centred on an even grid from 0 to the cutoff: [E, n_gaussians]."""

    def __init__(self, cutoff: float = 8.0, n_gaussians: int = 40) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, cutoff, n_gaussians), persistent=False)
        self.width = cutoff / (n_gaussians - 1)

    def forward(self, distance: torch.Tensor) -> torch.Tensor:
        """Gaussian features of each distance."""
        return torch.exp(-(((distance.float().unsqueeze(-1) - self.centers) / self.width) ** 2))


class GatedConv(nn.Module):
    """One CGCNN convolution: sigmoid(gate) * softplus(core) messages summed into each atom, with a residual."""

    def __init__(self, atom_dim: int, edge_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * atom_dim + edge_dim, 2 * atom_dim)
        self.norm_messages = nn.BatchNorm1d(2 * atom_dim)
        self.norm_sum = nn.BatchNorm1d(atom_dim)
        self.softplus = nn.Softplus()

    def forward(self, h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """Updated atom vectors [A, atom_dim]; each edge brings neighbour `dst` to centre `src` (batch indices)."""
        z = self.norm_messages(self.linear(torch.cat((h[src], h[dst], edges), dim=-1)))
        gate, core = z.chunk(2, dim=-1)
        messages = torch.sigmoid(gate) * self.softplus(core)
        summed = torch.zeros_like(h).index_add_(0, src, messages.to(h.dtype))
        return self.softplus(h + self.norm_sum(summed))


class CGCNN(nn.Module):
    """Atom embedding, Gaussian-expanded edge distances, gated graph convolutions, mean pooling per crystal, MLP."""

    inputs = ("atom_z", "edge_src", "edge_dst", "edge_dist", "crystal_index")

    def __init__(
        self,
        element_features: torch.Tensor | None = None,
        atom_dim: int = 64,
        n_conv: int = 3,
        hidden: int = 128,
        cutoff: float = 8.0,
        n_gaussians: int = 40,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(N_Z, atom_dim)
        features = element_features if element_features is not None else torch.zeros(N_Z, 0)
        self.register_buffer("element_features", features.float().clone())
        self.project = nn.Linear(features.shape[1], atom_dim) if features.shape[1] else None
        self.distance = GaussianDistance(cutoff, n_gaussians)
        self.convs = nn.ModuleList(GatedConv(atom_dim, n_gaussians) for _ in range(n_conv))
        self.head = nn.Sequential(nn.Linear(atom_dim, hidden), nn.Softplus(), nn.Linear(hidden, 1))

    def atoms(self, atom_z: torch.Tensor) -> torch.Tensor:
        """Initial atom vectors [A, atom_dim]."""
        h = self.embedding(atom_z)
        return h + self.project(self.element_features[atom_z]) if self.project is not None else h

    def forward(
        self,
        atom_z: torch.Tensor,
        edge_src: torch.Tensor,
        edge_dst: torch.Tensor,
        edge_dist: torch.Tensor,
        crystal_index: torch.Tensor,
    ) -> torch.Tensor:
        """Predictions [C] for the C crystals of a batch; `crystal_index` [A] gives each atom's crystal."""
        h, edges = self.atoms(atom_z), self.distance(edge_dist)
        for conv in self.convs:
            h = conv(h, edge_src, edge_dst, edges)
        n_crystals = int(crystal_index.max()) + 1
        sums = torch.zeros(n_crystals, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, crystal_index, h)
        counts = torch.bincount(crystal_index, minlength=n_crystals).clamp(min=1).unsqueeze(-1)
        return self.head(sums / counts).squeeze(-1)
