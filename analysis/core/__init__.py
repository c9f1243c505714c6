"""The torch-free core of the analysis: what the render side (article/, build.py) may import.

Cache paths and safe names, the one JSON rule, errors, the analysis config (spec), code keys and the freshness
fingerprint, bring-your-own factory names, the time-limit worker, torchvision's weight files, image sets, and the numpy
scores the figures share with the analysis (banding, weight views). Nothing here imports torch or a module of the
analysis outside this package, but for the two registries found by name (the model families and the per-tensor
analyses): both contracts are in pyproject.toml ([tool.importlinter]).
"""
