# Backpack-GPT2 configuration for Hugging Face transformers, written for backpack-edit.
#
# `backpack edit` copies this file (and modeling_backpack_gpt2.py) into every edited model
# folder and points config.json's auto_map at them, so that
#   AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
# builds the Backpack with the folder's edit applied. It is the same architecture as the
# published stanfordnlp/backpack-gpt2 checkpoint (GPT-2's keys plus the number of senses and
# the sense MLP's width multiplier); the defaults are that checkpoint's.
#
# model_type is "backpack-gpt2", a type stock transformers does not know: a folder whose
# config.json says so can only be built through its auto_map (remote code), never silently as a
# plain GPT-2 that would drop the sense network and the edit. Base checkpoints that say
# "gpt2" (as the published config.json does) load with this class too; transformers then only
# logs that the types differ.
from transformers import GPT2Config


class BackpackGPT2Config(GPT2Config):
    model_type = "backpack-gpt2"

    def __init__(
        self,
        num_senses=16,
        sense_intermediate_scale=4,
        vocab_size=50264,
        n_positions=512,
        scale_attn_by_inverse_layer_idx=True,
        **kwargs,
    ):
        self.num_senses = num_senses
        self.sense_intermediate_scale = sense_intermediate_scale
        super().__init__(
            vocab_size=vocab_size,
            n_positions=n_positions,
            scale_attn_by_inverse_layer_idx=scale_attn_by_inverse_layer_idx,
            **kwargs,
        )
