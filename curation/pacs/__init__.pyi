"""Names of :mod:`curation.pacs` for type checkers; the package loads them when first used."""

from .dicomweb import (
    REQUEST_ERRORS,
    DicomWebSource,
    PacsSource,
    explain,
    list_instances,
    query_series,
    query_studies,
    series_metadata,
)
from .dimse import DimseClient, DimseSource
from .frame import PACS_STRATA, QIDO_ONLY, candidate_exams, describe_study, remote_series
from .local import LocalOrthanc, free_port, orthanc_installed
from .pull import PullResult, pull, source_of
from .retrieve import RetrieveResult, present_instances, retrieve_series

__all__ = [
    "DicomWebSource", "PacsSource", "REQUEST_ERRORS", "explain", "query_studies", "query_series",
    "list_instances", "series_metadata", "DimseSource", "DimseClient", "candidate_exams", "describe_study",
    "remote_series", "PACS_STRATA", "QIDO_ONLY", "LocalOrthanc", "free_port", "orthanc_installed", "PullResult",
    "pull", "source_of", "RetrieveResult", "retrieve_series", "present_instances"
]
