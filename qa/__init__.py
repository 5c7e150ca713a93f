"""ctcurate QA stage: label checks, metadata expectations (Great Expectations) and QA reports.

Label sets and label map storage live in :mod:`curation` (``curation.labels.labelset``, ``curation.labels.labelmap``)
because every stage uses them; this package judges labels and metadata.
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
