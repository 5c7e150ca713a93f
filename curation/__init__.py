"""ctcurate curation stage: PACS export or DICOMweb -> catalog -> sample -> exclusion verdicts -> NRRD cases.

It owns the workspace layout (:class:`Workspace`) and the volume IO (:class:`Volume`,
:func:`read_nrrd`, :func:`write_nrrd`) that the other stages use. Arrays are (z, y, x); patient
coordinates are LPS.
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
