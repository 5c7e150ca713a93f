"""The release's license: an SPDX id checked against the SPDX list, its URL, and its full text.

The id comes from the datasheet answers (``license: CC-BY-4.0``). It is checked against the SPDX
license list (the copy ``packaging`` ships, so no network is needed) and written in SPDX's spelling;
Zenodo takes the same id in lower case. The full legal text of the licenses datasets are usually
released under ships with ctcurate (:data:`SHIPPED`); for any other SPDX license the answers name a
file holding its text (``license_file``), which the release copies as ``LICENSE``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from curation.errors import ReleaseError

__all__ = ["SHIPPED", "ReleaseLicense", "spdx_id", "release_license"]

_TEXTS = Path(__file__).parent / "licenses"
#: SPDX ids whose full text ships with ctcurate
SHIPPED = ("CC-BY-4.0", "CC-BY-NC-SA-4.0", "CC0-1.0")
#: a license text shorter than this is a link or a name, not the text (the MIT license, among the shortest: 1,000)
MIN_TEXT = 500


def _spdx_ids(deprecated: bool = False) -> dict[str, str]:
    from packaging.licenses._spdx import LICENSES  # the SPDX list packaging ships

    return {key: str(value["id"]) for key, value in LICENSES.items() if bool(value.get("deprecated")) == deprecated}


def spdx_id(value: str, *, source: str = "license") -> str:
    """``value`` as a known, current SPDX license id in SPDX's spelling (``cc-by-4.0`` -> ``CC-BY-4.0``)."""
    ids = _spdx_ids()
    text = str(value).strip()
    if text.lower() in ids:
        return ids[text.lower()]
    old = _spdx_ids(deprecated=True)
    if text.lower() in old:
        successors = [ids[k] for k in ids if k.startswith(text.lower() + "-")]
        raise ReleaseError(f"{source} {text!r}: deprecated in the SPDX list; use "
                           f"{' or '.join(successors) or 'its current id (see spdx.org/licenses)'}")
    close = difflib.get_close_matches(text.lower(), list(ids), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(ids[c] for c in close)}?" if close else \
        f"e.g. {', '.join(SHIPPED)} (see spdx.org/licenses)"
    raise ReleaseError(f"{source} {text!r}: not a license id of the SPDX list (one license, no expression); {hint}")


@dataclass(frozen=True)
class ReleaseLicense:
    """A checked license: SPDX id, the URL of its SPDX page, and its full text."""

    id: str
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", spdx_id(self.id))
        if not self.text.strip():
            raise ReleaseError(f"license {self.id}: its text is empty; give the license's full text")

    @property
    def url(self) -> str:
        return f"https://spdx.org/licenses/{self.id}.html"

    @property
    def zenodo_id(self) -> str:
        """Zenodo's license vocabulary: the SPDX id in lower case."""
        return self.id.lower()


def release_license(answers: dict, answers_path: Path | None = None) -> ReleaseLicense | None:
    """The license the answers choose, with its full text; ``None`` when they choose none.

    The text is ctcurate's own copy for :data:`SHIPPED` licenses, else the file ``license_file`` names
    (relative to the answers file).
    """
    given = answers.get("license_file")
    source = f"{answers_path}: license" if answers_path else "license"
    if not answers.get("license"):
        if given:
            raise ReleaseError(f"{source}: license_file {given} given without 'license'; add the license's SPDX id")
        return None
    license_id = spdx_id(str(answers["license"]), source=source)
    if given and license_id in SHIPPED:
        raise ReleaseError(f"{source} {license_id}: ctcurate ships its full text; remove license_file {given}, "
                           "whose text would stand beside an id it may not match")
    if given:
        path = Path(str(given))
        if not path.is_absolute() and answers_path is not None:
            path = Path(answers_path).parent / path
        if not path.is_file():
            raise ReleaseError(f"{answers_path or 'answers'}: license_file {given}: no such file; give the path of "
                               f"the full text of {license_id}")
        text = path.read_text(encoding="utf-8")
        if len(text.strip()) < MIN_TEXT:
            raise ReleaseError(f"{answers_path or 'answers'}: license_file {given} holds {len(text.strip())} "
                               f"characters, not the full text of {license_id}; give the whole license text")
        return ReleaseLicense(license_id, text)
    if license_id not in SHIPPED:
        raise ReleaseError(f"{source} {license_id}: ctcurate ships the full text of {', '.join(SHIPPED)} only; add "
                           f"'license_file: <path to the text of {license_id}>' to the answers")
    return ReleaseLicense(license_id, (_TEXTS / f"{license_id}.txt").read_text(encoding="utf-8"))
