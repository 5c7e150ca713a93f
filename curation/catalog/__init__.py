"""The catalog of an export: files found and their headers read (``scan``), grouped into patients,
studies and series with their geometry.
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
