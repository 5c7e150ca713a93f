"""ctcurate QA stage: label sets, mask checks, metadata expectations and QA reports.

It reads cases and segmentations through :class:`curation.Workspace`.
"""

__all__: list[str] = []
