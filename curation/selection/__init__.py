"""From catalog to chosen series: the seeded, auditable draw of exams (``sample``), the exclusion rules
with their reason codes, the verdicts and the one series chosen per exam (``filter``), and the
exclusion flow figure.
"""


import lazy_loader

# the public names come from __init__.pyi; each submodule is imported when one of its names is first used
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
