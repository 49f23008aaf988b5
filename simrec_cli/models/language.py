"""LSTM_SA, SimREC's language encoder: word embedding, a GRU (stored as `lstm`), self-attention, attention pooling.

The numerics follow the released model because trained weights depend on them: the recurrent layer is a GRU
run over all positions (padding included, no packing); the LayerNorm divides by the *unbiased* std plus eps;
padded tokens (id 0) are masked with -1e9 in self-attention and -1e4 in the pooling.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

PAD_ID = 0
SELF_ATTENTION_MASK_VALUE = -1e9
POOLING_MASK_VALUE = -1e4


class LayerNorm(nn.Module):
    """weight * (x - mean) / (std + eps) + bias with the unbiased std: MCAN's norm, not `nn.LayerNorm`."""

    def __init__(self, size: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.weight * (x - mean) / (std + self.eps) + self.bias


class FC(nn.Module):
    """Linear -> ReLU -> dropout, with the parameters under `linear`."""

    def __init__(self, c_in: int, c_out: int, dropout: float):
        super().__init__()
        self.linear = nn.Linear(c_in, c_out)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.relu(self.linear(x)))


class MLP(nn.Module):
    """FC (`fc`) then Linear (`linear`)."""

    def __init__(self, c_in: int, hidden: int, c_out: int, dropout: float):
        super().__init__()
        self.fc = FC(c_in, hidden, dropout)
        self.linear = nn.Linear(hidden, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.fc(x))


class MHAtt(nn.Module):
    """Multi-head self-attention with padded keys masked to -1e9 before the softmax."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.linear_v = nn.Linear(hidden, hidden)
        self.linear_k = nn.Linear(hidden, hidden)
        self.linear_q = nn.Linear(hidden, hidden)
        self.linear_merge = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        return x.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

    def forward(self, v: torch.Tensor, k: torch.Tensor, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = q.shape
        v, k, q = self._split(self.linear_v(v)), self._split(self.linear_k(k)), self._split(self.linear_q(q))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        # Masked softmax in float32: -1e9 does not fit in float16 under fp16 autocast.
        scores = scores.float().masked_fill(mask, SELF_ATTENTION_MASK_VALUE)
        attention = self.dropout(scores.softmax(dim=-1).to(v.dtype))
        merged = (attention @ v).transpose(1, 2).reshape(batch, length, hidden)
        return self.linear_merge(merged)


class FFN(nn.Module):
    """The transformer's position-wise feed-forward block, under `mlp`."""

    def __init__(self, hidden: int, ffn_size: int, dropout: float):
        super().__init__()
        self.mlp = MLP(hidden, ffn_size, hidden, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class SA(nn.Module):
    """Post-norm transformer encoder layer: y = norm1(y + MHAtt(y)); y = norm2(y + FFN(y))."""

    def __init__(self, hidden: int, heads: int, ffn_size: int, dropout: float):
        super().__init__()
        self.mhatt = MHAtt(hidden, heads, dropout)
        self.ffn = FFN(hidden, ffn_size, dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = LayerNorm(hidden)
        self.dropout2 = nn.Dropout(dropout)
        self.norm2 = LayerNorm(hidden)

    def forward(self, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.norm1(y + self.dropout1(self.mhatt(y, y, y, mask)))
        return self.norm2(y + self.dropout2(self.ffn(y)))


class AttFlat(nn.Module):
    """Attention pooling of the sequence into one vector per glimpse, merged by `linear_merge`."""

    def __init__(self, hidden: int, glimpses: int, dropout: float):
        super().__init__()
        self.mlp = MLP(hidden, hidden // 2, glimpses, dropout)
        self.linear_merge = nn.Linear(hidden * glimpses, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(x).masked_fill(mask.squeeze(1).squeeze(1).unsqueeze(2), POOLING_MASK_VALUE)
        weights = logits.softmax(dim=1)
        pooled = torch.einsum("blg,blh->bgh", weights, x).flatten(1)
        return self.linear_merge(pooled)


class LSTM_SA(nn.Module):
    """SimREC's language encoder (its class name kept).

    Token ids [B, L] -> `flat_lang_feat` [B, H], `lang_feat` [B, L, H], `lang_feat_mask` [B, 1, 1, L] (True = PAD).
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden: int,
        heads: int,
        ffn_size: int,
        depth: int,
        glimpses: int,
        dropout: float,
        pretrained_embedding: np.ndarray | None = None,
        freeze_embedding: bool = False,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        if pretrained_embedding is not None:
            self.embedding.weight.data.copy_(torch.as_tensor(pretrained_embedding, dtype=torch.float32))
            self.embedding.weight.requires_grad_(not freeze_embedding)
        # SimREC names this GRU `lstm`; its dropout=0.1 had no effect with one layer, so none is set.
        self.lstm = nn.GRU(embed_size, hidden, num_layers=1, batch_first=True)
        self.sa_list = nn.ModuleList(SA(hidden, heads, ffn_size, dropout) for _ in range(depth))
        self.att_flat = AttFlat(hidden, glimpses, dropout)

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        mask = (tokens == PAD_ID).unsqueeze(1).unsqueeze(2)
        features, _ = self.lstm(self.embedding(tokens))
        for layer in self.sa_list:
            features = layer(features, mask)
        return {"flat_lang_feat": self.att_flat(features, mask), "lang_feat": features, "lang_feat_mask": mask}
