"""ctcurate datacard stage: splits, datasheet, Croissant metadata, release bundles and Zenodo publishing.

It reads cases and tables through :class:`curation.Workspace`.
"""

__all__: list[str] = []
