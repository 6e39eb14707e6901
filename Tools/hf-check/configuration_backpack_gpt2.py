"""Backpack-GPT2 configuration, as the published modeling code imports it: GPT-2's
configuration plus the number of senses and the sense MLP's width multiplier."""
from transformers import GPT2Config


class BackpackGPT2Config(GPT2Config):
    model_type = "gpt2"

    def __init__(self, num_senses=16, sense_intermediate_scale=4, **kwargs):
        self.num_senses = num_senses
        self.sense_intermediate_scale = sense_intermediate_scale
        super().__init__(**kwargs)
