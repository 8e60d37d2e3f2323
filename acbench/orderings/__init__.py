"""Orderings: sort a dataset so that neighbours look alike (scikit-learn estimator style)."""

from acbench.registry import ORDERINGS

for _name, _target in {
    "isomap": "acbench.orderings.isomap:Isomap1D",
    "random": "acbench.orderings.simple:RandomOrdering",
    "umap": "acbench.orderings.umap1d:UMAP1D",
    "class_label": "acbench.orderings.simple:ClassLabel",
    "greedy_chain": "acbench.orderings.greedy:GreedyChain",
    "spectral": "acbench.orderings.spectral:Spectral",
    "stored": "acbench.orderings.simple:Stored",
}.items():
    ORDERINGS.register_lazy(_name, _target, version="1")
