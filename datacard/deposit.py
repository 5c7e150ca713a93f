"""What a release's Zenodo record holds: its metadata, its creators, and the files that make the whole release.

Zenodo keeps files flat (no folders), so a release goes up as its top-level files plus its zip parts
(``archives/``: the case folders, and the datasheet folder); :func:`upload_set` checks that every file
``SHA256SUMS`` lists is one of those or inside one, so nothing of the release is left behind. The
metadata follows Zenodo's deposit documentation (upload type, title, description, creators as
"Family, Given" with affiliation and ORCID, license id, version, keywords, related identifiers) and
is checked before anything is sent: creators must be real people (no placeholder, ORCIDs with a valid
check digit), the license an SPDX id, and the record within Zenodo's limits (files per record, bytes).
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.errors import ReleaseError, ZenodoError
from curation.workspace import ReleaseFolder

from .license import spdx_id
from .seal import read_checksums

__all__ = ["ZenodoLimits", "check_creators", "orcid_ok", "zenodo_metadata", "upload_set"]

log = logging.getLogger(__name__)

#: relations Zenodo accepts for related identifiers (DataCite's relation types)
RELATIONS = {"isCitedBy", "cites", "isSupplementTo", "isSupplementedBy", "isContinuedBy", "continues",
             "isDescribedBy", "describes", "hasMetadata", "isMetadataFor", "isNewVersionOf", "isPreviousVersionOf",
             "isPartOf", "hasPart", "isReferencedBy", "references", "isDocumentedBy", "documents", "isCompiledBy",
             "compiles", "isVariantFormOf", "isOriginalFormOf", "isIdenticalTo", "isAlternateIdentifier",
             "isReviewedBy", "reviews", "isDerivedFrom", "isSourceOf", "requires", "isRequiredBy", "isObsoletedBy",
             "obsoletes"}
# names and words the answers template, examples and tools leave where a person's name belongs
_PLACEHOLDER_NAMES = {"family, given", "given family", "doe, john", "doe, jane", "john doe", "jane doe",
                      "ctcurate steward", "steward", "name", "your name", "author", "creator", "tbd", "todo", "xxx",
                      "n/a", "na", "unknown", "anonymous", "test", "..."}


@dataclass(frozen=True)
class ZenodoLimits:
    """Zenodo's documented limits for one record: at most 100 files and 50 GB in all."""

    max_files: int = 100
    max_bytes: int = 50 * 10**9

    def __post_init__(self) -> None:
        if self.max_files < 1 or self.max_bytes < 1:
            raise ZenodoError(f"Zenodo limits {self}: expected at least one file and one byte")


def orcid_ok(orcid: str) -> bool:
    """An ORCID iD ``0000-0002-1825-0097`` with its ISO 7064 11,2 check digit right."""
    if not re.fullmatch(r"\d{4}-\d{4}-\d{4}-\d{3}[\dX]", orcid):
        return False
    digits = orcid.replace("-", "")
    total = 0
    for d in digits[:-1]:
        total = (total + int(d)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


def check_creators(creators: Any, *, source: str = "answers") -> list[dict[str, str]]:
    """The answers' creators as Zenodo takes them; refuses none, placeholders and malformed ORCIDs."""
    fix = (f"set 'creators' in {source} to the people who made the dataset: [{{name: 'Family, Given', "
           "affiliation: '...', orcid: '0000-0002-1825-0097'}]")
    if not creators:
        raise ReleaseError(f"{source}: no creators; a published record names who made it; {fix}")
    if not isinstance(creators, list):
        raise ReleaseError(f"{source}: creators must be a list, found {type(creators).__name__}; {fix}")
    out = []
    for number, creator in enumerate(creators, start=1):
        entry = {"name": creator} if isinstance(creator, str) else creator
        if not isinstance(entry, dict):
            raise ReleaseError(f"{source}: creator {number} is {entry!r}; {fix}")
        name = str(entry.get("name") or "").strip()
        if not name or name.lower().strip(" .") in _PLACEHOLDER_NAMES or re.fullmatch(r"[\W_]*", name):
            raise ReleaseError(f"{source}: creator {number} is named {name!r}, a placeholder; {fix}")
        unknown = set(entry) - {"name", "affiliation", "orcid", "gnd"}
        if unknown:
            raise ReleaseError(f"{source}: creator {number} ({name}) has {sorted(unknown)}; Zenodo takes name, "
                               "affiliation, orcid and gnd")
        clean = {"name": name}
        if entry.get("affiliation"):
            clean["affiliation"] = str(entry["affiliation"]).strip()
        if entry.get("orcid"):
            orcid = str(entry["orcid"]).strip().removeprefix("https://orcid.org/")
            if not orcid_ok(orcid):
                raise ReleaseError(f"{source}: creator {number} ({name}): ORCID {entry['orcid']!r} is not valid "
                                   "(16 digits as 0000-0000-0000-000X with a matching check digit); copy it from "
                                   "the person's orcid.org page")
            clean["orcid"] = orcid
        if entry.get("gnd"):
            clean["gnd"] = str(entry["gnd"]).strip()
        if "," not in name:
            log.warning("%s: creator %d %r: Zenodo expects 'Family, Given'", source, number, name)
        out.append(clean)
    return out


def zenodo_metadata(release: ReleaseFolder) -> dict[str, Any]:
    """The deposition's metadata, from the release's own record (``release.json``) and ``croissant.json``."""
    record = json.loads(release.record.read_text())
    answers = record.get("answers", {})
    croissant = json.loads(release.croissant.read_text())
    source = f"release {release.version}'s answers"
    try:
        creators = check_creators(answers.get("creators"), source=source)
        if not answers.get("license"):
            raise ReleaseError(f"{source}: no license; set 'license' (an SPDX id, e.g. CC-BY-4.0)")
        license_id = spdx_id(str(answers["license"]), source=f"{source}: license")
    except ReleaseError as exc:
        raise ZenodoError(f"{exc}; then build a new release version with them and publish that") from None
    description = str(croissant.get("description") or "").strip()
    if not description:
        raise ZenodoError(f"release {release.version}: croissant.json has no description; build a new version")
    meta: dict[str, Any] = {"title": str(croissant.get("name") or release.version), "upload_type": "dataset",
                            "description": description, "creators": creators, "access_right": "open",
                            "license": license_id.lower(), "version": release.version,
                            "keywords": [str(k) for k in answers.get("keywords") or ["CT", "segmentation"]]}
    if croissant.get("datePublished"):
        meta["publication_date"] = str(croissant["datePublished"])[:10]
    related = answers.get("related_identifiers") or []
    for item in related:
        if not isinstance(item, dict) or not item.get("identifier") or item.get("relation") not in RELATIONS:
            raise ZenodoError(f"{source}: related identifier {item!r}: expected {{identifier: ..., relation: one of "
                              "isSupplementTo, isDescribedBy, cites, ...}}; build a new version with it fixed")
    if related:
        meta["related_identifiers"] = [{"identifier": str(i["identifier"]), "relation": str(i["relation"])}
                                       for i in related]
    return meta


def upload_set(release: ReleaseFolder, limits: ZenodoLimits) -> list[tuple[str, Path]]:
    """(name on Zenodo, file) for the whole release: its top-level files and its zip parts.

    Refused when a file of ``SHA256SUMS`` is neither of those nor inside a part (a release built by an
    older ctcurate that kept its datasheet out of the parts), or when Zenodo's limits would be passed.
    """
    archives = sorted(release.archives_dir.glob("*.zip")) if release.archives_dir.is_dir() else []
    top = sorted(p for p in release.root.iterdir() if p.is_file())
    files = [(p.name, p) for p in archives + top]
    covered = {p.name for p in top} | {p.relative_to(release.root).as_posix() for p in archives}
    for part in archives:
        with zipfile.ZipFile(part) as archive:
            covered |= set(archive.namelist())
    left = sorted(set(read_checksums(release)) - covered)
    if left:
        raise ZenodoError(f"release {release.version}: {len(left)} file(s) would not reach Zenodo (it keeps no "
                          f"folders), e.g. {left[0]}; build a new release version with this ctcurate, which packs "
                          "them into a zip part, and publish that")
    size = sum(p.stat().st_size for _, p in files)
    if len(files) > limits.max_files:
        raise ZenodoError(f"release {release.version}: {len(files)} files, Zenodo holds at most {limits.max_files} "
                          "per record; build a new version with larger zip parts (--archive-mb)")
    if size > limits.max_bytes:
        raise ZenodoError(f"release {release.version}: {size / 1e9:.1f} GB, Zenodo holds at most "
                          f"{limits.max_bytes / 1e9:g} GB per record; ask Zenodo for a larger quota, or split the "
                          "dataset into several records")
    return files
