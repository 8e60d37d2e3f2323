"""Codecs: adapters over compressai models with mixers at conditioning sites."""

from acbench.registry import CODECS

for _name, _target in {
    "mshp": "acbench.codecs.mshp:MSHP",
    "elic": "acbench.codecs.elic:ELIC",
}.items():
    CODECS.register_lazy(_name, _target, version="1")
