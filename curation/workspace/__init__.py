"""The workspace: the one owner of every path and file name (:class:`Workspace`), its typed settings,
and the executors (local process pool, Dask) that batch steps run on.
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
