"""Cases: chosen series converted to de-identified NRRD volumes (native and isotropic copies) with
``case.json``, and the cases table built from them.
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
