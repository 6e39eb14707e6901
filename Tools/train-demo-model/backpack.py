"""A minimal, self-contained PyTorch Backpack-GPT2 (Hewitt et al., ACL 2023).

Written from the spec in backpack-edit's docs/BACKPACK.md (the computation of the published
`stanfordnlp/backpack-gpt2` checkpoint). Parameter names match the Hugging Face checkpoint
exactly (`backpack.gpt2_model.h.0.attn.c_attn.weight`, ...), GPT-2 `Conv1D` weights are stored
(in, out), `backpack.sense_weight_net.c_attn` is an `nn.Linear` stored (out, in) = (2d, d).

Forward pass (eval mode):
  senses C = sense_network(E[ids])                    (k, n, d), position independent
  hc       = GPT-2 trunk(E[ids] + P[:n])              (n, d), attention / sqrt(d/h) / (layer+1)
  alpha    = softmax(q_l k_l^T / sqrt(d/k) + M)       (k, n, n), M = -10000 above the diagonal
  logits   = (sum_l alpha[l] @ C[l]) E^T              no final LayerNorm, no division by k
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class BackpackConfig:
    vocab_size: int = 8192
    n_positions: int = 256
    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4
    num_senses: int = 16
    sense_intermediate_scale: int = 4
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    dropout: float = 0.0  # embd/resid/attn dropout during training (identity in eval mode)
    eos_token_id: int = 0

    @classmethod
    def from_hf(cls, path_or_dict) -> "BackpackConfig":
        d = path_or_dict
        if not isinstance(d, dict):
            with open(d) as f:
                d = json.load(f)
        return cls(
            vocab_size=d["vocab_size"], n_positions=d["n_positions"], n_embd=d["n_embd"],
            n_layer=d["n_layer"], n_head=d["n_head"], num_senses=d["num_senses"],
            sense_intermediate_scale=d["sense_intermediate_scale"],
            layer_norm_epsilon=d.get("layer_norm_epsilon", 1e-5),
            initializer_range=d.get("initializer_range", 0.02),
            eos_token_id=d.get("eos_token_id", 0),
        )

    def to_hf(self) -> dict:
        """A config.json in the layout of stanfordnlp/backpack-gpt2."""
        return {
            "activation_function": "gelu_new",
            "architectures": ["BackpackGPT2LMHeadModel"],
            "attn_pdrop": 0.1,
            "auto_map": {
                "AutoConfig": "configuration_backpack_gpt2.BackpackGPT2Config",
                "AutoModelForCausalLM": "modeling_backpack_gpt2.BackpackGPT2LMHeadModel",
            },
            "bos_token_id": self.eos_token_id,
            "dtype": "float32",
            "embd_pdrop": 0.1,
            "eos_token_id": self.eos_token_id,
            "initializer_range": self.initializer_range,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "model_type": "gpt2",
            "n_embd": self.n_embd,
            "n_head": self.n_head,
            "n_inner": None,
            "n_layer": self.n_layer,
            "n_positions": self.n_positions,
            "num_senses": self.num_senses,
            "reorder_and_upcast_attn": False,
            "resid_pdrop": 0.1,
            "scale_attn_by_inverse_layer_idx": True,
            "scale_attn_weights": True,
            "sense_intermediate_scale": self.sense_intermediate_scale,
            "summary_activation": None,
            "summary_first_dropout": 0.1,
            "summary_proj_to_labels": True,
            "summary_type": "cls_index",
            "summary_use_proj": True,
            "use_cache": True,
            "vocab_size": self.vocab_size,
        }


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Conv1D(nn.Module):
    """GPT-2's Conv1D: y = x W + b with W stored (in, out)."""

    def __init__(self, n_in: int, n_out: int, std: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * std)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class MLP(nn.Module):
    def __init__(self, d_in: int, d_hidden: int, d_out: int, std: float, proj_std: float, dropout: float):
        super().__init__()
        self.c_fc = Conv1D(d_in, d_hidden, std)
        self.c_proj = Conv1D(d_hidden, d_out, proj_std)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(gelu_new(self.c_fc(x))))


class Attention(nn.Module):
    def __init__(self, cfg: BackpackConfig, layer_idx: int, std: float, proj_std: float):
        super().__init__()
        d = cfg.n_embd
        self.n_head = cfg.n_head
        self.layer_idx = layer_idx
        self.c_attn = Conv1D(d, 3 * d, std)
        self.c_proj = Conv1D(d, d, proj_std)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        b, n, d = x.shape
        h = self.n_head
        q, k, v = self.c_attn(x).split(d, dim=-1)
        q = q.view(b, n, h, d // h).transpose(1, 2)
        k = k.view(b, n, h, d // h).transpose(1, 2)
        v = v.view(b, n, h, d // h).transpose(1, 2)
        # scale_attn_weights and scale_attn_by_inverse_layer_idx: / sqrt(d/h) / (layer + 1)
        scale = 1.0 / (math.sqrt(d // h) * float(self.layer_idx + 1))
        if not self.training and not torch.is_autocast_enabled():
            # the reference path, exactly as eager GPT-2 computes it
            att = (q @ k.transpose(-1, -2)) / math.sqrt(d // h) / float(self.layer_idx + 1)
            causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~causal, torch.finfo(att.dtype).min)
            att = torch.softmax(att, dim=-1)
            y = att @ v
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, scale=scale,
                dropout_p=self.attn_dropout.p if self.training else 0.0)
        y = y.transpose(1, 2).reshape(b, n, d)
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):
    def __init__(self, cfg: BackpackConfig, layer_idx: int):
        super().__init__()
        d, std = cfg.n_embd, cfg.initializer_range
        proj_std = std / math.sqrt(2 * cfg.n_layer)  # GPT-2's scaled init of residual projections
        self.ln_1 = nn.LayerNorm(d, eps=cfg.layer_norm_epsilon)
        self.attn = Attention(cfg, layer_idx, std, proj_std)
        self.ln_2 = nn.LayerNorm(d, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(d, 4 * d, d, std, proj_std, cfg.dropout)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Trunk(nn.Module):
    def __init__(self, cfg: BackpackConfig):
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        nn.init.normal_(self.wte.weight, std=cfg.initializer_range)
        nn.init.normal_(self.wpe.weight, std=cfg.initializer_range)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([Block(cfg, i) for i in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)

    def forward(self, ids):
        n = ids.shape[1]
        pos = torch.arange(n, device=ids.device)
        z = self.drop(self.wte(ids) + self.wpe(pos)[None])
        for block in self.h:
            z = block(z)
        return self.ln_f(z)


class NoMixBlock(nn.Module):
    """The sense network's block: residual = hidden + residual, no attention."""

    def __init__(self, cfg: BackpackConfig):
        super().__init__()
        d, std = cfg.n_embd, cfg.initializer_range
        self.ln_1 = nn.LayerNorm(d, eps=cfg.layer_norm_epsilon)
        self.ln_2 = nn.LayerNorm(d, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(d, 4 * d, d, std, std, cfg.dropout)

    def forward(self, hidden, residual):
        r = hidden + residual
        r = self.mlp(self.ln_1(r)) + r
        return self.ln_2(r)


class SenseNetwork(nn.Module):
    def __init__(self, cfg: BackpackConfig):
        super().__init__()
        d, std = cfg.n_embd, cfg.initializer_range
        self.k = cfg.num_senses
        self.ln = nn.LayerNorm(d, eps=cfg.layer_norm_epsilon)
        self.block = NoMixBlock(cfg)
        self.final_mlp = MLP(d, cfg.sense_intermediate_scale * d, cfg.num_senses * d, std, std, 0.0)

    def forward(self, x0):
        """x0: (b, n, d) input embeddings -> senses (b, k, n, d)."""
        b, n, d = x0.shape
        s = self.final_mlp(self.block(self.ln(x0), x0))  # (b, n, k*d)
        return s.view(b, n, self.k, d).permute(0, 2, 1, 3)


class SenseWeightNet(nn.Module):
    def __init__(self, cfg: BackpackConfig):
        super().__init__()
        d = cfg.n_embd
        self.k = cfg.num_senses
        self.c_attn = nn.Linear(d, 2 * d)  # weight (2d, d)
        nn.init.normal_(self.c_attn.weight, std=cfg.initializer_range)
        nn.init.zeros_(self.c_attn.bias)

    def forward(self, hc):
        """hc: (b, n, d) -> alpha (b, k, n, n), rows sum to 1."""
        b, n, d = hc.shape
        k = self.k
        q, kk = self.c_attn(hc).split(d, dim=-1)
        q = q.view(b, n, k, d // k).transpose(1, 2)
        kk = kk.view(b, n, k, d // k).transpose(1, 2)
        scores = (q @ kk.transpose(-1, -2)) / math.sqrt(d // k)
        future = torch.ones(n, n, dtype=torch.bool, device=hc.device).triu(1)
        scores = scores + future.to(scores.dtype) * -10000.0
        return torch.softmax(scores.float(), dim=-1).to(scores.dtype)


class Backpack(nn.Module):
    def __init__(self, cfg: BackpackConfig):
        super().__init__()
        self.gpt2_model = GPT2Trunk(cfg)
        self.sense_network = SenseNetwork(cfg)
        self.sense_weight_net = SenseWeightNet(cfg)


class BackpackLM(nn.Module):
    """Top level: parameter names are `backpack.<...>` as in the Hub checkpoint."""

    def __init__(self, cfg: BackpackConfig):
        super().__init__()
        self.cfg = cfg
        self.backpack = Backpack(cfg)

    def forward(self, ids, return_parts: bool = False):
        bp = self.backpack
        E = bp.gpt2_model.wte.weight
        senses = bp.sense_network(bp.gpt2_model.wte(ids))      # (b, k, n, d)
        hc = bp.gpt2_model(ids)                                 # (b, n, d)
        alpha = bp.sense_weight_net(hc)                         # (b, k, n, n)
        o = (alpha @ senses).sum(dim=1)                         # (b, n, d)
        logits = o @ E.t()                                      # tied output embedding
        if return_parts:  # o is what the HF model returns as its hidden state
            return logits, senses, alpha, o
        return logits

    # ---- checkpoint I/O in the Hub's naming --------------------------------------------
    def hf_state_dict(self) -> dict:
        """One name per tensor, float32, contiguous; no lm_head / alias entries."""
        return {k: v.detach().float().cpu().contiguous() for k, v in self.state_dict().items()}

    def load_hf_state_dict(self, sd: dict):
        aliases = {"lm_head.weight", "backpack.word_embeddings.weight", "backpack.position_embeddings.weight"}
        sd = {k: v for k, v in sd.items()
              if k not in aliases and not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
        missing, unexpected = self.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise ValueError(f"checkpoint mismatch: missing={missing} unexpected={unexpected}")


def load_folder(folder: str) -> BackpackLM:
    """The Backpack of a model folder (config.json and model.safetensors, the Hub's names), in
    eval mode: what the Tools that score a checkpoint load."""
    from safetensors.torch import load_file
    model = BackpackLM(BackpackConfig.from_hf(os.path.join(folder, "config.json"))).eval()
    model.load_hf_state_dict(load_file(os.path.join(folder, "model.safetensors")))
    return model


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
