"""acbench: a benchmarking and ablation harness for associative compression of image datasets.

Importing ``acbench`` is light (no torch); heavy modules are imported where used.
"""

__version__ = "0.1.0"
