"""Volumes in memory and on disk: :class:`Volume` (arrays (z, y, x), geometry in LPS), NRRD and NIfTI
reading and writing, isotropic resampling, and the canonical LPS orientation models run on.
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
