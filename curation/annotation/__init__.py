"""The annotation store: one database (SQLite in the workspace or PostgreSQL) holding segmentation
revisions and their reviews, case status, claims and structure review states.
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
