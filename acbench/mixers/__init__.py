"""Mixers: small modules that mix a tensor with the reference's features (forward(a, ref))."""

from acbench.registry import MIXERS

for _name, _target in {
    "conv1x1": "acbench.mixers.basic:Conv1x1",
    "film": "acbench.mixers.basic:FiLM",
    "deep_conv": "acbench.mixers.basic:DeepConv",
    "zero": "acbench.mixers.basic:Zero",
}.items():
    MIXERS.register_lazy(_name, _target, version="1")
# aligns: matches each position with the reference's positions around it before mixing
MIXERS.register_lazy("attention", "acbench.mixers.attention:Attention", version="1", tags=("aligns",))
