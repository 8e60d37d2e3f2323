"""Codecs: adapters over compressai models with mixers at conditioning sites."""

import warnings

from acbench.registry import CODECS

# compressai 1.2.8 calls torch.jit.script at import; torch ≥ 2.10 warns on every start.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

for _name, _target in {
    "mshp": "acbench.codecs.mshp:MSHP",
    "elic": "acbench.codecs.elic:ELIC",
}.items():
    CODECS.register_lazy(_name, _target, version="1")
