"""Label sets (classes, categories, laterality, colours, HU ranges, anatomical knowledge), label map IO
(multi-label volumes, mask folders, Slicer ``.seg.nrrd``), mappings between label sets and the contrast phase
read from labelled HU. Every stage
uses them.
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
