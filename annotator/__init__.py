"""ctcurate annotator stage: nnU-Net v2 pre-segmentation, napari correction, revisions, export for retraining.

It reads and writes cases and segmentation revisions through :class:`curation.Workspace`.
"""

__all__: list[str] = []
