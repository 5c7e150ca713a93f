"""Models registered in a workspace: ``WS/models/<name>/v<version>.json``.

A model is one nnU-Net trained-model folder or several (parts whose outputs merge into one label
map). Registering records, per part, the folder, folds, checkpoint, how its label names map to the
workspace's label set, and a fingerprint (sha256 of each checkpoint and of ``plans.json``) with the
nnunetv2 version; loading checks the fingerprint again, so a model that changed on disk is refused
rather than silently used. Registering the same files again returns the existing version.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from curation import Workspace
from curation.atomic import atomic_write_text, sha256_file
from curation.errors import ModelError, ModelLoadError

from .predict import ModelFolder, NnunetModel, check_checkpoints
from .segment import ModelPart, map_labels

__all__ = ["PartRecord", "ModelRecord", "register_model", "list_models", "load_model_record", "load_model_parts"]

log = logging.getLogger(__name__)


_sha256 = sha256_file


@dataclass(frozen=True)
class PartRecord:
    """One trained-model folder of a registered model."""

    path: str
    folds: tuple[str, ...]
    checkpoint: str
    renames: dict[str, str]
    labels: dict[str, int]
    checkpoint_sha256: dict[str, str]
    plans_sha256: str

    @classmethod
    def from_folder(cls, folder: ModelFolder, renames: dict[str, str]) -> PartRecord:
        return cls(str(folder.path.resolve()), folder.folds, folder.checkpoints[0].name, dict(renames),
                   dict(folder.labels), {f: _sha256(c) for f, c in zip(folder.folds, folder.checkpoints, strict=True)},
                   _sha256(folder.path / "plans.json"))

    def fingerprint(self) -> tuple[Any, ...]:
        return (self.plans_sha256, tuple(sorted(self.checkpoint_sha256.items())), tuple(sorted(self.renames.items())))


@dataclass(frozen=True)
class ModelRecord:
    """A registered model version."""

    name: str
    version: int
    parts: tuple[PartRecord, ...]
    label_set: str
    nnunetv2: str
    created: str
    lineage: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"{self.name}@v{self.version}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, origin: str) -> ModelRecord:
        try:
            data = json.loads(text)
            parts = tuple(PartRecord(**{**p, "folds": tuple(p["folds"])}) for p in data.pop("parts"))
            return cls(parts=parts, **data)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"{origin}: not a model record ({exc}); register the model again") from None


def _nnunet_version() -> str:
    try:
        return metadata.version("nnunetv2")
    except metadata.PackageNotFoundError:
        return "not installed"


def list_models(ws: Workspace) -> list[ModelRecord]:
    """Every registered version, by name then version."""
    out = []
    for path in sorted(ws.models_dir.glob("*/v*.json")):
        out.append(ModelRecord.from_json(path.read_text(), str(path)))
    return sorted(out, key=lambda m: (m.name, m.version))


def load_model_record(ws: Workspace, name: str, version: int | None = None) -> ModelRecord:
    """The named model's given (default: latest) version; :class:`ModelError` when there is none."""
    versions = [m for m in list_models(ws) if m.name == name]
    if not versions:
        known = ", ".join(sorted({m.name for m in list_models(ws)})) or "none"
        from annotator.small_model import SMALL_MODEL_FOLDER

        raise ModelError(f"model {name!r}: not registered in {ws.root} (registered: {known}); run "
                         f"'ctcurate model add {name} MODEL_FOLDER' (the small 5-structure model that ships with "
                         f"ctcurate: {SMALL_MODEL_FOLDER.parent})")
    if version is None:
        return versions[-1]
    found = [m for m in versions if m.version == version]
    if not found:
        raise ModelError(f"model {name!r}: no version {version} (have {', '.join(str(m.version) for m in versions)})")
    return found[0]


def register_model(ws: Workspace, name: str, folders: list[str | Path], *, renames: dict[str, str] | None = None,
                   folds: tuple[str, ...] | None = None, lineage: dict[str, Any] | None = None) -> ModelRecord:
    """Check the folders and their label mapping, then record a new version (or return the identical latest)."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ModelError(f"model name {name!r}: use letters, digits, '-' and '_' only")
    if not folders:
        raise ModelError(f"model {name!r}: give at least one trained-model folder")
    label_set = ws.label_set()
    read = [ModelFolder.read(path, folds=folds) for path in folders]
    unknown = sorted(set(renames or {}) - {label for folder in read for label in folder.labels})
    if unknown:
        labels = sorted({label for folder in read for label in folder.labels})
        raise ModelError(f"--map {unknown[0]}={(renames or {})[unknown[0]]}: the model has no label {unknown[0]!r} "
                         f"(its labels: {', '.join(labels[:12])}{' ...' if len(labels) > 12 else ''})")
    parts = []
    for folder in read:
        check_checkpoints(folder)  # a damaged copy is refused here, not at every case of a batch
        own = {k: v for k, v in (renames or {}).items() if k in folder.labels}
        map_labels(folder, label_set, own)  # raises for names that do not map
        parts.append(PartRecord.from_folder(folder, own))
    existing = [m for m in list_models(ws) if m.name == name]
    if existing and [p.fingerprint() for p in existing[-1].parts] == [p.fingerprint() for p in parts]:
        log.info("model %s unchanged: keeping %s", name, existing[-1].tag)
        return existing[-1]
    record = ModelRecord(name, (existing[-1].version + 1) if existing else 1, tuple(parts), label_set.name,
                         _nnunet_version(), datetime.now(UTC).isoformat(timespec="seconds"), dict(lineage or {}))
    atomic_write_text(ws.models_dir / name / f"v{record.version}.json", record.to_json())
    return record


def load_model_parts(ws: Workspace, record: ModelRecord, *, device: str = "cpu") -> list[ModelPart]:
    """Load every part of a registered model, refusing parts whose files changed since registration."""
    label_set = ws.label_set()
    parts = []
    for part in record.parts:
        folder = ModelFolder.read(part.path, folds=part.folds, checkpoint=part.checkpoint)
        for fold, checkpoint in zip(folder.folds, folder.checkpoints, strict=True):
            if _sha256(checkpoint) != part.checkpoint_sha256.get(fold):
                raise ModelLoadError(f"model {record.tag}: {checkpoint} changed since it was registered; register "
                                     "the model again to make a new version")
        parts.append(ModelPart(NnunetModel(folder, device=device), map_labels(folder, label_set, part.renames)))
    return parts
