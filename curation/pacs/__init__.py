"""Sampling straight from a PACS: DICOMweb (QIDO-RS, WADO-RS) and DIMSE (C-FIND, C-GET) sources, the
sampling frame of a study query, retrieval of the chosen series, the ``pull`` step, and a throwaway
local Orthanc for the demo, the tests and the benchmarks.
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
