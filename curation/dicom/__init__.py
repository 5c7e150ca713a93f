"""DICOM reading: the tag table, the fast header parser, enhanced (multi-frame) CT functional groups, slice
geometry, a series as a volume in HU, lenient reading scoped to ctcurate's own reads, and de-identification
helpers (keyed hashes, pseudonyms, redaction).
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
