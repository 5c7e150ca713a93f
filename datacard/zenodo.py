"""``ctcurate publish VERSION --zenodo``: upload a release to Zenodo through its REST API.

The first release creates a deposition; later releases ask the newest published one (compared as
semantic versions) for a new version (``actions/newversion``) under the same concept record. What goes
up is the whole release and only it (:mod:`datacard.deposit`): its top-level files and zip parts, with
the metadata checked before anything is sent (creators, SPDX license, Zenodo's limits). A new version
starts with the files of the one before; those this release does not hold are deleted, and the
deposition's file list is compared with the release's before it may be published. Each file is
streamed with PUT into the deposition's bucket, and Zenodo's returned MD5 checksum is compared with
ours; files already in the deposition with the same checksum are skipped, so an interrupted upload
resumes where it stopped. The deposition stays a draft unless ``publish``.
The token is passed in by the caller (the CLI reads it from an environment variable or a file); it goes
into the Authorization header only and is never logged or written. The deposition's ids are kept in
``WS/releases/<VERSION>.zenodo.json``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation import Workspace
from curation.atomic import atomic_write_text
from curation.errors import ZenodoError

from .deposit import ZenodoLimits, upload_set, zenodo_metadata
from .seal import verify_release
from .split import _SEMVER, _semver

__all__ = ["ZenodoError", "ZenodoClient", "PublishResult", "publish_release", "ZENODO", "ZENODO_SANDBOX"]

log = logging.getLogger(__name__)
ZENODO = "https://zenodo.org"
ZENODO_SANDBOX = "https://sandbox.zenodo.org"



def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _detail(body: bytes) -> str:
    """Zenodo's error answer in one line: its message and the fields it names."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:300]
    if not isinstance(answer, dict):
        return str(answer)[:300]
    fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in answer.get("errors") or [])
    return f"{answer.get('message', '')}" + (f" {fields}" if fields else "")


class ZenodoClient:
    """The few Zenodo deposit endpoints ctcurate uses; retries 5xx answers and dropped connections."""

    def __init__(self, base_url: str, token: str, *, retries: int = 3, backoff_s: float = 1.0,
                 limits: ZenodoLimits | None = None) -> None:
        if not token:
            raise ZenodoError("Zenodo token missing: set ZENODO_TOKEN or pass --token-file")
        self.base = base_url.rstrip("/")
        self._token = token
        self.retries, self.backoff_s = retries, backoff_s
        self.limits = limits or ZenodoLimits()

    def __repr__(self) -> str:  # never show the token
        return f"ZenodoClient({self.base!r})"

    def _request(self, method: str, url: str, body: Any = None, *, stream: Path | None = None) -> Any:
        url = url if url.startswith("http") else f"{self.base}{url}"
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        for attempt in range(self.retries + 1):
            data: Any = None
            if stream is not None:
                data = stream.open("rb")
                headers.update({"Content-Type": "application/octet-stream",
                                "Content-Length": str(stream.stat().st_size)})
            elif body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    text = answer.read()
                    return json.loads(text) if text else {}
            except urllib.error.HTTPError as exc:
                detail = _detail(exc.read())
                if exc.code >= 500 and attempt < self.retries:
                    log.warning("Zenodo %s %s: %d, retrying", method, urllib.parse.urlparse(url).path, exc.code)
                    time.sleep(self.backoff_s * (attempt + 1))
                    continue
                hint = {401: "the token is wrong or lacks the deposit:write scope",
                        413: "the file is larger than Zenodo accepts; cut smaller archives (--archive-mb)"}
                raise ZenodoError(f"Zenodo {method} {urllib.parse.urlparse(url).path}: HTTP {exc.code} "
                                  f"({hint.get(exc.code, detail)})") from None
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                if attempt < self.retries and stream is None:
                    time.sleep(self.backoff_s * (attempt + 1))
                    continue
                reason = getattr(exc, "reason", exc)
                raise ZenodoError(f"Zenodo {method} {urllib.parse.urlparse(url).path}: connection failed "
                                  f"({reason}); run the same command again: finished files are skipped") from None
            finally:
                if stream is not None and hasattr(data, "close"):
                    data.close()
        raise ZenodoError(f"Zenodo {method} {url}: gave up after {self.retries} retries")

    def create(self) -> dict[str, Any]:
        return dict(self._request("POST", "/api/deposit/depositions", {}))

    def get(self, deposition_id: int) -> dict[str, Any]:
        return dict(self._request("GET", f"/api/deposit/depositions/{deposition_id}"))

    def new_version(self, deposition_id: int) -> dict[str, Any]:
        answer = self._request("POST", f"/api/deposit/depositions/{deposition_id}/actions/newversion")
        return dict(self._request("GET", answer["links"]["latest_draft"]))

    def set_metadata(self, deposition_id: int, metadata: dict[str, Any]) -> dict[str, Any]:
        return dict(self._request("PUT", f"/api/deposit/depositions/{deposition_id}", {"metadata": metadata}))

    def files(self, deposition_id: int) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/api/deposit/depositions/{deposition_id}/files"))

    def delete_file(self, deposition_id: int, file_id: str) -> None:
        self._request("DELETE", f"/api/deposit/depositions/{deposition_id}/files/{file_id}")

    def upload(self, bucket: str, path: Path, name: str) -> dict[str, Any]:
        return dict(self._request("PUT", f"{bucket}/{urllib.parse.quote(name)}", stream=path))

    def publish(self, deposition_id: int) -> dict[str, Any]:
        return dict(self._request("POST", f"/api/deposit/depositions/{deposition_id}/actions/publish"))


@dataclass
class PublishResult:
    deposition_id: int
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    already: bool = False  # published by an earlier run: nothing was sent
    published: bool = False
    doi: str | None = None


def _versions(ws: Workspace) -> list[str]:
    """The workspace's release versions, oldest first (as semantic versions: 1.9.0 before 1.10.0)."""
    if not ws.releases_dir.is_dir():
        return []
    names = [p.name for p in ws.releases_dir.iterdir() if p.is_dir() and _SEMVER.match(p.name)]
    return sorted(names, key=_semver)


def _states(ws: Workspace, version: str) -> dict[str, dict[str, Any]]:
    """The Zenodo state of every other release version that has one, oldest first."""
    return {v: json.loads(path.read_text()) for v in _versions(ws)
            if v != version and (path := ws.release(v).zenodo_state).is_file()}


def _check_order(ws: Workspace, version: str) -> None:
    """A record's versions go up, and Zenodo keeps one draft per record: refuse what would break either."""
    states = _states(ws, version)
    newer = [v for v, s in states.items() if s.get("published") and _semver(v) > _semver(version)]
    if newer:
        raise ZenodoError(f"release {version}: {newer[-1]} is published on Zenodo already, and a record's newest "
                          f"version is the one readers get; publish a release newer than {newer[-1]}")
    drafts = [v for v, s in states.items() if not s.get("published")]
    if drafts:
        draft = drafts[-1]
        raise ZenodoError(f"release {version}: the Zenodo deposition of release {draft} "
                          f"({states[draft].get('deposition_id')}) is still a draft; publish it first ('ctcurate "
                          f"publish {draft} --zenodo --publish'), or delete that draft on Zenodo and remove "
                          f"{ws.release(draft).zenodo_state}")


def publish_release(ws: Workspace, version: str, client: ZenodoClient, *, publish: bool = False) -> PublishResult:
    """Create (or continue) the deposition for ``WS/releases/VERSION`` and upload what is missing."""
    release = ws.release(version)
    if not release.record.is_file():
        raise ZenodoError(f"release {version}: {release.root} not found; build it with 'ctcurate release {version}'")
    check = verify_release(release)
    if not check.ok:
        raise ZenodoError(f"release {version} does not verify, nothing was uploaded: {check.summary()}; build a new "
                          "version from the workspace ('ctcurate release') and publish that")
    files = upload_set(release, client.limits)
    metadata = zenodo_metadata(release)
    state_path = release.zenodo_state
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if state.get("published"):  # a rerun after the end: nothing to do
        return PublishResult(int(state["deposition_id"]), published=True, doi=state.get("doi"), already=True)
    if not state.get("deposition_id"):
        _check_order(ws, version)
    if state.get("deposition_id"):
        deposition = client.get(int(state["deposition_id"]))
        if deposition.get("submitted"):  # published by a run killed before it could write so
            state.update(published=True, doi=deposition.get("doi"), record_id=deposition.get("record_id"))
            atomic_write_text(state_path, json.dumps(state, indent=1))
            return PublishResult(int(deposition["id"]), published=True, doi=state["doi"], already=True)
    else:
        published = [(v, s) for v, s in _states(ws, version).items() if s.get("published")]
        if published:
            log.info("release %s: a new version of the Zenodo record of %s", version, published[-1][0])
        deposition = client.new_version(int(published[-1][1]["deposition_id"])) if published else client.create()
        state = {"deposition_id": deposition["id"], "concept": deposition.get("conceptrecid"), "published": False}
        atomic_write_text(state_path, json.dumps(state, indent=1))
    deposition_id = int(deposition["id"])
    client.set_metadata(deposition_id, metadata)
    present = {f["filename"]: f for f in client.files(deposition_id)}
    result = PublishResult(deposition_id)
    ours = {name for name, _ in files}
    for name in sorted(set(present) - ours):  # an earlier version's file this release does not hold
        client.delete_file(deposition_id, str(present.pop(name)["id"]))
        result.deleted.append(name)
    for name, path in files:
        digest = _md5(path)
        if name in present and present[name].get("checksum", "").removeprefix("md5:") == digest:
            result.skipped.append(name)
            continue
        if name in present:  # an older version's file of the same name
            client.delete_file(deposition_id, str(present[name]["id"]))
        answer = client.upload(deposition["links"]["bucket"], path, name)
        theirs = str(answer.get("checksum", "")).removeprefix("md5:")
        if theirs != digest:
            raise ZenodoError(f"{name}: Zenodo stored checksum {theirs or 'none'}, ours is {digest}; run the same "
                              "command again to upload it anew")
        result.uploaded.append(name)
        log.info("uploaded %s", name)
    held = {f["filename"] for f in client.files(deposition_id)}
    if held != ours:
        raise ZenodoError(f"Zenodo deposition {deposition_id} holds other files than release {version}: missing "
                          f"{sorted(ours - held)[:5]}, extra {sorted(held - ours)[:5]}; run the same command again")
    if publish:
        answer = client.publish(deposition_id)
        result.published, result.doi = True, answer.get("doi")
        state.update(published=True, doi=result.doi, record_id=answer.get("record_id"))
        atomic_write_text(state_path, json.dumps(state, indent=1))
    return result
