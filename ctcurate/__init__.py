"""The ``ctcurate`` command line and the demo that runs every stage. It sits on top of the stages
(:mod:`curation`, :mod:`annotator`, :mod:`qa`, :mod:`datacard`); nothing imports it."""

from curation import __version__

__all__ = ["__version__"]
