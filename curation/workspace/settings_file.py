"""``ctcurate.toml``: reading it (every key checked, each error naming the file and the key) and writing it.

The parsed settings are kept per text of the file: a batch reads them once per case, and an edited file is
read again.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from curation.errors import ConfigError

from .settings import (
    AnnotationSettings,
    ConversionSettings,
    ExclusionSettings,
    ExecutorSettings,
    LabelSettings,
    PacsSettings,
    QASettings,
    SamplingSettings,
    Settings,
)

__all__ = ["load_settings", "save_settings"]

_SECTIONS = {
    "sampling": SamplingSettings,
    "exclusion": ExclusionSettings,
    "conversion": ConversionSettings,
    "executor": ExecutorSettings,
    "labels": LabelSettings,
    "qa": QASettings,
    "annotation": AnnotationSettings,
    "pacs": PacsSettings,
}


def _build_section(path: Path, name: str, cls: type, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [{name}] must be a table of settings, found {type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(f'{name}.{k}' for k in unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, tuple):
            if not isinstance(value, list):
                raise ConfigError(f"{path}: setting '{name}.{key}' must be a list, found {value!r}")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{path}: setting '{name}.{key}' must be true or false, found {value!r}")
        elif isinstance(default, (int, float)) and not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: setting '{name}.{key}' must be a number, found {value!r}")
        elif isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            raise ConfigError(f"{path}: setting '{name}.{key}' must be a whole number, found {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{path}: setting '{name}.{key}' must be a string, found {value!r}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_settings(path: str | Path) -> Settings:
    """Read and validate a ``ctcurate.toml`` file.

    Raises
    ------
    ConfigError
        If the file is missing, is not TOML, or holds an unknown key or a bad value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise ConfigError(f"{path}: the settings file is empty (a workspace's settings are never all left "
                              "out); restore it from a backup, or delete it and run 'ctcurate init' on the folder "
                              "again (the secret key and the catalog are kept)")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: settings file not found; run 'ctcurate init' to create a workspace"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax or re-create it") from None
    return _parse_settings(path, text)


@functools.lru_cache(maxsize=16)
def _parse_settings(path: Path, text: str) -> Settings:
    """The settings a file's text holds (kept per text: a batch reads them once per case, and they are frozen)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax or re-create it") from None
    top = {k: v for k, v in raw.items() if k not in _SECTIONS}
    unknown = sorted(set(top) - {"name", "seed", "sources"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: name, seed, sources, "
            + ", ".join(f"[{s}]" for s in _SECTIONS)
        )
    sections = {name: _build_section(path, name, cls, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    sources = top.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise ConfigError(f"{path}: 'sources' must be a list of folder paths, found {sources!r}")
    try:
        return Settings(
            name=str(top.get("name", "ctcurate-project")),
            seed=top.get("seed", 0),
            sources=tuple(sources),
            **sections,
        )
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_settings(settings: Settings, path: str | Path) -> None:
    """Write settings as TOML (atomically)."""
    import tomli_w

    from curation.atomic import atomic_write_text

    atomic_write_text(path, tomli_w.dumps(settings.to_dict()))
