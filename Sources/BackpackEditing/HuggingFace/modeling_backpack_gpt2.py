# Backpack-GPT2 for Hugging Face transformers, written for backpack-edit (not a copy of the
# published modeling code, which is not redistributable).
#
# Computes the Backpack language model (Hewitt et al., ACL 2023) exactly as the published
# stanfordnlp/backpack-gpt2 checkpoint does, with that checkpoint's parameter names, so its
# weights (and every folder written by `backpack edit` / `backpack init`) load unchanged:
#   senses C = sense_network(E[ids])                 (b, k, n, d)
#   alpha    = sense_weight_net(GPT-2 trunk(ids))     (b, k, n, n)
#   o        = sum_l alpha[l] @ C[l]                   (b, n, d)
#   logits   = o E^T                                   (lm_head tied to wte unless untied)
#
# Attention: the trunk's attention is computed here, in eager form, on every path. transformers'
# SDPA / flash paths ignore scale_attn_by_inverse_layer_idx, which the Backpack relies on; this
# model therefore declares no SDPA/flash support (transformers picks "eager" by default and
# refuses an explicit "sdpa"/"flash_attention_2"), and its attention never consults
# config._attn_implementation at all.
#
# Edited checkpoints: `backpack edit` folds vocabulary-wide edits into the weights and writes
# word-level edits to sense_overrides.safetensors (tensors `token.<id>`, shape (k, d), each
# REPLACING all k sense vectors of that token id wherever it occurs). config.json declares the
# file under "backpack_edit" with its SHA-256. from_pretrained loads it (local folder, or the
# Hub through huggingface_hub's hf_hub_download) and refuses to load when it is declared but
# missing or its SHA-256 differs. A model whose config declares overrides that were never
# loaded (e.g. built with from_config) refuses to run forward rather than drop the edit.
import hashlib
import math
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.utils import ModelOutput, logging

from .configuration_backpack_gpt2 import BackpackGPT2Config

logger = logging.get_logger(__name__)

# The model-folder contract shared with the Swift toolkit (ModelFolder.swift; a test checks
# that these constants equal the Swift ones).
OVERRIDES_FILE = "sense_overrides.safetensors"
EDIT_KEY = "backpack_edit"
OVERRIDES_KEY = "sense_overrides"
OVERRIDES_SHA_KEY = "sense_overrides_sha256"


class Conv1D(nn.Module):
    """GPT-2's linear layer with weight stored (in, out): y = x W + b."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        shape = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight)
        return x.view(shape)


def gelu_new(x):
    # The expression of transformers' NewGELUActivation, so results match it bit for bit.
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class BackpackMLP(nn.Module):
    def __init__(self, intermediate_size, out_size, config):
        super().__init__()
        self.c_fc = Conv1D(intermediate_size, config.n_embd)
        self.c_proj = Conv1D(out_size, intermediate_size)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(gelu_new(self.c_fc(x))))


class BackpackAttention(nn.Module):
    """Causal self-attention of the GPT-2 trunk, eager, with the inverse-layer scaling."""

    def __init__(self, config, layer_idx):
        super().__init__()
        self.embed_dim = config.n_embd
        self.num_heads = config.n_head
        self.head_dim = self.embed_dim // self.num_heads
        if self.head_dim * self.num_heads != self.embed_dim:
            raise ValueError(f"config.json: n_embd ({self.embed_dim}) must be divisible by n_head ({self.num_heads})")
        self.layer_idx = layer_idx
        self.scale_attn_weights = config.scale_attn_weights
        self.scale_attn_by_inverse_layer_idx = config.scale_attn_by_inverse_layer_idx
        self.c_attn = Conv1D(3 * self.embed_dim, self.embed_dim)
        self.c_proj = Conv1D(self.embed_dim, self.embed_dim)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def _heads(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, key_mask=None):
        q, k, v = self.c_attn(x).split(self.embed_dim, dim=2)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        # The order of operations of GPT-2's eager attention (GPT2Attention._attn).
        w = torch.matmul(q, k.transpose(-1, -2))
        if self.scale_attn_weights:
            w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype, device=w.device)
        if self.scale_attn_by_inverse_layer_idx:
            w = w / float(self.layer_idx + 1)
        n = x.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool, device=w.device).tril()
        w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype, device=w.device))
        if key_mask is not None:
            w = w + key_mask
        w = nn.functional.softmax(w, dim=-1).type(v.dtype)
        w = self.attn_dropout(w)
        out = torch.matmul(w, v).transpose(1, 2).reshape(x.shape[0], n, self.embed_dim)
        return self.resid_dropout(self.c_proj(out))


class BackpackBlock(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = BackpackAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = BackpackMLP(inner, config.n_embd, config)

    def forward(self, x, key_mask=None):
        x = x + self.attn(self.ln_1(x), key_mask)
        return x + self.mlp(self.ln_2(x))


class BackpackTrunk(nn.Module):
    """The contextualization network: a GPT-2 trunk (parameter names of GPT2Model)."""

    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([BackpackBlock(config, i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def forward(self, input_ids, position_ids, key_mask=None):
        x = self.drop(self.wte(input_ids) + self.wpe(position_ids))
        for block in self.h:
            x = block(x, key_mask)
        return self.ln_f(x)


class BackpackNoMixBlock(nn.Module):
    """The sense network's block: no attention, residual = hidden + residual."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = BackpackMLP(4 * config.n_embd, config.n_embd, config)
        self.resid_dropout1 = nn.Dropout(config.resid_pdrop)
        self.resid_dropout2 = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden, residual):
        residual = self.resid_dropout1(hidden) + residual
        residual = self.resid_dropout2(self.mlp(self.ln_1(residual))) + residual
        return self.ln_2(residual)


class BackpackSenseNetwork(nn.Module):
    """C(x): k sense vectors per token, computed from its embedding alone."""

    def __init__(self, config):
        super().__init__()
        self.num_senses = config.num_senses
        self.n_embd = config.n_embd
        self.dropout = nn.Dropout(config.embd_pdrop)
        self.block = BackpackNoMixBlock(config)
        self.ln = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.final_mlp = BackpackMLP(config.n_embd * config.sense_intermediate_scale,
                                     config.n_embd * config.num_senses, config)

    def forward(self, input_embeds):
        residual = self.dropout(input_embeds)
        hidden = self.block(self.ln(residual), residual)
        senses = self.final_mlp(hidden)
        b, n, _ = senses.shape
        # sense l of token j is senses[j, l*d:(l+1)*d]
        return senses.reshape(b, n, self.num_senses, self.n_embd).transpose(1, 2)  # (b, k, n, d)


class BackpackWeightNetwork(nn.Module):
    """alpha: one key-query layer with k heads of size d/k, no value, no output projection."""

    def __init__(self, num_senses, embed_dim):
        super().__init__()
        self.num_senses = num_senses
        self.embed_per_sense = embed_dim // num_senses
        self.c_attn = nn.Linear(embed_dim, 2 * num_senses * self.embed_per_sense)

    def forward(self, encoded, key_mask=None):
        b, n, _ = encoded.shape
        qk = self.c_attn(encoded).reshape(b, n, 2, self.num_senses, self.embed_per_sense)
        q, k = qk.unbind(dim=2)
        # the published order: k is scaled before the product
        scores = torch.einsum("bthd,bshd->bhts", q, k * (1.0 / math.sqrt(q.shape[-1])))
        causal = torch.triu(torch.full((n, n), -10000.0, device=scores.device), 1)
        scores = scores + causal.to(dtype=scores.dtype)
        if key_mask is not None:
            scores = scores + key_mask
        return torch.softmax(scores, dim=-1, dtype=q.dtype)  # (b, k, n, n)


@dataclass
class BackpackGPT2BaseModelOutput(ModelOutput):
    hidden_states: Optional[torch.FloatTensor] = None
    contextualization: Optional[torch.FloatTensor] = None
    senses: Optional[torch.FloatTensor] = None


@dataclass
class BackpackGPT2LMHeadModelOutput(ModelOutput):
    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    contextualization: Optional[torch.FloatTensor] = None
    senses: Optional[torch.FloatTensor] = None
    hidden_states: Optional[torch.FloatTensor] = None


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _declared_overrides(config):
    """(file name, sha256) of the sense overrides config.json declares, or (None, None)."""
    edit = getattr(config, EDIT_KEY, None)
    if edit is None:
        return None, None
    if not isinstance(edit, dict):
        raise ValueError(f"config.json: key '{EDIT_KEY}' must be an object, found {type(edit).__name__}")
    name = edit.get(OVERRIDES_KEY)
    if name is None:
        return None, None
    sha = edit.get(OVERRIDES_SHA_KEY)
    if not isinstance(name, str) or not name or os.path.basename(name) != name or name in (".", ".."):
        raise ValueError(f"config.json: '{EDIT_KEY}.sense_overrides' must be a plain file name in the model folder, found {name!r}")
    if not isinstance(sha, str) or len(sha) != 64:
        raise ValueError(f"config.json: '{EDIT_KEY}.sense_overrides_sha256' must be the 64-hex-digit SHA-256 of {name}, found {sha!r}")
    return name, sha.lower()


class BackpackGPT2PreTrainedModel(PreTrainedModel):
    config_class = BackpackGPT2Config
    base_model_prefix = "backpack"
    # Eager attention only (see the top of this file): with these False, transformers defaults to
    # "eager" and rejects an explicit "sdpa" or "flash_attention_2".
    _supports_sdpa = False
    _supports_flash_attn = False
    _supports_flash_attn_2 = False
    _supports_flex_attn = False
    # Aliases and buffers the published pytorch_model.bin carries besides the real tensors.
    _keys_to_ignore_on_load_unexpected = [
        r"attn\.bias$", r"attn\.masked_bias$",
        r"^backpack\.word_embeddings\.weight$", r"^backpack\.position_embeddings\.weight$",
        r"^word_embeddings\.weight$", r"^position_embeddings\.weight$",
    ]

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, Conv1D)):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def _backpack_module(self):
        return self if isinstance(self, BackpackGPT2Model) else self.backpack

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True
        model._backpack_module()._load_declared_overrides(pretrained_model_name_or_path, kwargs)
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Saves like PreTrainedModel and, for an edited model, its sense overrides, declared
        (with the new file's SHA-256) in the saved config.json."""
        backpack = self._backpack_module()
        declared, _ = _declared_overrides(self.config)
        if backpack._overrides is None:
            if declared is not None:
                raise RuntimeError(f"config declares sense overrides ({declared}) that this model never loaded; refusing to save it without its edit")
            return super().save_pretrained(save_directory, *args, **kwargs)
        from safetensors.torch import save_file

        os.makedirs(save_directory, exist_ok=True)
        ids, values = backpack._overrides
        tensors = {f"token.{int(i)}": values[j].detach().to("cpu", torch.float32).contiguous() for j, i in enumerate(ids.tolist())}
        final = os.path.join(save_directory, OVERRIDES_FILE)
        tmp = final + ".tmp"
        save_file(tensors, tmp, metadata={"format": "pt"})
        edit = dict(getattr(self.config, EDIT_KEY, None) or {})
        edit.update({OVERRIDES_KEY: OVERRIDES_FILE, OVERRIDES_SHA_KEY: _sha256(tmp)})
        setattr(self.config, EDIT_KEY, edit)
        result = super().save_pretrained(save_directory, *args, **kwargs)
        os.replace(tmp, final)
        return result


class BackpackGPT2Model(BackpackGPT2PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        if getattr(config, "activation_function", "gelu_new") != "gelu_new":
            raise ValueError(f"config.json: activation_function must be \"gelu_new\" (the Backpack's), found {config.activation_function!r}")
        self.embed_dim = config.n_embd
        self.num_senses = config.num_senses
        self.gpt2_model = BackpackTrunk(config)
        self.sense_network = BackpackSenseNetwork(config)
        self.sense_weight_net = BackpackWeightNetwork(config.num_senses, config.n_embd)
        # (ids (m,), values (m, k, d)) of the word-level edit, or None. Not parameters: they are
        # saved to sense_overrides.safetensors, never into the model's weight file.
        self._overrides = None
        self._overrides_on = None
        self._overrides_required, _ = _declared_overrides(config)
        self.post_init()

    # The published model's aliases, as properties so that loading never sees a second name.
    @property
    def word_embeddings(self):
        return self.gpt2_model.wte

    @property
    def position_embeddings(self):
        return self.gpt2_model.wpe

    def get_input_embeddings(self):
        return self.gpt2_model.wte

    def set_input_embeddings(self, new_embeddings):
        self.gpt2_model.wte = new_embeddings

    # -- sense overrides -------------------------------------------------------------------

    @property
    def sense_overrides(self):
        """{token id: (k, d) tensor} of the word-level edit applied by this model."""
        if self._overrides is None:
            return {}
        ids, values = self._overrides
        return {int(i): values[j] for j, i in enumerate(ids.tolist())}

    def load_sense_overrides(self, path, expected_sha256=None):
        """Loads `token.<id>` (k, d) tensors from a safetensors file; each replaces all k sense
        vectors of that token id. Errors name the file and the tensor."""
        from safetensors import safe_open

        if expected_sha256 is not None:
            actual = _sha256(path)
            if actual != expected_sha256:
                raise ValueError(f"{path}: SHA-256 is {actual}, but config.json ({EDIT_KEY}.sense_overrides_sha256) "
                                 f"says {expected_sha256}; the overrides file does not belong to this config; refusing to load")
        k, d, vocab = self.config.num_senses, self.config.n_embd, self.config.vocab_size
        ids, values = [], []
        with safe_open(path, framework="pt") as f:
            for name in f.keys():
                token = name[len("token."):] if name.startswith("token.") else ""
                if not token.isdigit() or not 0 <= int(token) < vocab:
                    raise ValueError(f"{path}: tensor '{name}': expected a name 'token.<id>' with an id below {vocab}")
                t = f.get_tensor(name)
                if tuple(t.shape) != (k, d) or not t.is_floating_point():
                    raise ValueError(f"{path}: tensor '{name}': expected float shape ({k}, {d}), found {t.dtype} {tuple(t.shape)}")
                ids.append(int(token))
                values.append(t)
        if not ids:
            raise ValueError(f"{path}: no 'token.<id>' tensors; an edited checkpoint's overrides file is never empty")
        order = sorted(range(len(ids)), key=ids.__getitem__)
        self._overrides = (torch.tensor([ids[i] for i in order], dtype=torch.long),
                           torch.stack([values[i] for i in order]).to(torch.float32))
        self._overrides_on = None
        self._overrides_required = None

    def _load_declared_overrides(self, name_or_path, kwargs):
        declared, sha = _declared_overrides(self.config)
        subfolder = kwargs.get("subfolder") or ""
        folder = os.path.join(os.fspath(name_or_path), subfolder) if subfolder else os.fspath(name_or_path)
        if os.path.isdir(folder):
            path = os.path.join(folder, declared or OVERRIDES_FILE)
            if not os.path.isfile(path):
                if declared is not None:
                    raise OSError(f"{folder}: config.json declares word-level sense edits in '{declared}' "
                                  f"({EDIT_KEY}.sense_overrides), but {path} is missing; refusing to load the model without its edit")
                return
            if declared is None:
                # The Swift toolkit applies an overrides file it finds, declared or not; so do we.
                logger.warning(f"{path} is not declared in config.json ({EDIT_KEY}.sense_overrides); applying it")
            self.load_sense_overrides(path, sha)
        elif declared is not None:
            try:
                from huggingface_hub import hf_hub_download

                hub = {key: kwargs[key] for key in ("revision", "cache_dir", "token", "local_files_only",
                                                     "force_download", "proxies") if kwargs.get(key) is not None}
                path = hf_hub_download(repo_id=os.fspath(name_or_path), filename=declared, subfolder=subfolder or None, **hub)
            except Exception as error:
                raise OSError(f"{name_or_path}: config.json declares word-level sense edits in '{declared}', "
                              f"which could not be fetched ({error}); refusing to load the model without its edit") from error
            self.load_sense_overrides(path, sha)

    def _apply_overrides(self, input_ids, senses):
        if self._overrides_required is not None:
            raise RuntimeError(f"config.json declares word-level sense edits ({self._overrides_required}) that were not "
                               "loaded (the model was not built with from_pretrained on its folder); call "
                               "load_sense_overrides(path) or use from_pretrained, instead of running without the edit")
        if self._overrides is None:
            return senses
        key = (senses.device, senses.dtype)
        if self._overrides_on is None or self._overrides_on[0] != key:
            ids, values = self._overrides
            slot = torch.full((self.config.vocab_size,), -1, dtype=torch.long)
            slot[ids] = torch.arange(len(ids))
            self._overrides_on = (key, slot.to(senses.device), values.to(device=senses.device, dtype=senses.dtype))
        _, slot, values = self._overrides_on
        s = slot[input_ids]  # (b, n): row of the override, -1 where none
        replaced = values[s.clamp(min=0)].permute(0, 2, 1, 3)  # (b, k, n, d)
        return torch.where((s >= 0)[:, None, :, None], replaced, senses)

    # -- forward ---------------------------------------------------------------------------

    def forward(self, input_ids, position_ids=None, attention_mask=None, **kwargs):
        n = input_ids.shape[-1]
        if n > self.config.n_positions:
            raise ValueError(f"sequence of {n} tokens is longer than n_positions ({self.config.n_positions})")
        if position_ids is None:
            position_ids = torch.arange(n, dtype=torch.long, device=input_ids.device)[None].expand_as(input_ids)
        # Padding keys (attention_mask 0) are masked in both attentions; with an all-ones mask (or
        # none, as the published code takes) the result is the published model's.
        key_mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            dtype = self.gpt2_model.wte.weight.dtype
            key_mask = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        hidden = self.gpt2_model(input_ids, position_ids, key_mask)
        senses = self._apply_overrides(input_ids, self.sense_network(self.gpt2_model.wte(input_ids)))
        contextualization = self.sense_weight_net(hidden, key_mask)
        o = torch.einsum("bvij,bvjd->bid", contextualization, senses)
        return BackpackGPT2BaseModelOutput(hidden_states=o, contextualization=contextualization, senses=senses)

    def run_with_custom_contextualization(self, input_ids, contextualization):
        senses = self._apply_overrides(input_ids, self.sense_network(self.gpt2_model.wte(input_ids)))
        o = torch.einsum("bvij,bvjd->bid", contextualization, senses)
        return BackpackGPT2BaseModelOutput(hidden_states=o, contextualization=contextualization, senses=senses)


class BackpackGPT2LMHeadModel(BackpackGPT2PreTrainedModel, GenerationMixin):
    _tied_weights_keys = ["lm_head.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.backpack = BackpackGPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Tied to wte unless config.json says tie_word_embeddings: false (an edited input
        # embedding keeps the original output embedding as lm_head.weight).
        self.post_init()

    def get_input_embeddings(self):
        return self.backpack.gpt2_model.wte

    def set_input_embeddings(self, new_embeddings):
        self.backpack.gpt2_model.wte = new_embeddings

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    def load_sense_overrides(self, path, expected_sha256=None):
        self.backpack.load_sense_overrides(path, expected_sha256)

    @property
    def sense_overrides(self):
        return self.backpack.sense_overrides

    def forward(self, input_ids, position_ids=None, attention_mask=None, labels=None, **kwargs):
        out = self.backpack(input_ids, position_ids=position_ids, attention_mask=attention_mask)
        logits = self.lm_head(out.hidden_states)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits[..., :-1, :].reshape(-1, logits.size(-1)).float(),
                                               labels[..., 1:].reshape(-1).to(logits.device), ignore_index=-100)
        return BackpackGPT2LMHeadModelOutput(loss=loss, logits=logits, contextualization=out.contextualization,
                                             senses=out.senses, hidden_states=out.hidden_states)

    def run_with_custom_contextualization(self, input_ids, contextualization):
        out = self.backpack.run_with_custom_contextualization(input_ids, contextualization)
        return BackpackGPT2LMHeadModelOutput(logits=self.lm_head(out.hidden_states),
                                             contextualization=out.contextualization, senses=out.senses)

    # This model keeps no key-value cache: every generation step runs the whole prefix.
    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        return {"input_ids": input_ids, "attention_mask": attention_mask}
