"""A local HTTP server with the Zenodo deposit endpoints ctcurate uses, in Zenodo's request/response shapes.

It checks what Zenodo's deposit documentation asks for (developers.zenodo.org, "Deposit metadata"):
``upload_type`` from its list, ``title``, ``description``, ``creators`` (each with a ``name``; an ORCID
in its 0000-0000-0000-000X form), ``access_right``, a ``license`` id when access is open, an ISO
``publication_date``, ``keywords`` as strings, related identifiers with a relation; a metadata update
that fails is answered 400 "Validation error." with the failing fields. Files: at most ``max_files``
per deposition and ``quota_bytes`` in all (Zenodo: 100 files, 50 GB), one file at most ``max_bytes``
(413). Publishing needs valid metadata and at least one file. A new version starts with a copy of the
files of the version it comes from, as on Zenodo.

Failures can be planted: a wrong token gets 401, ``fail_once`` paths answer 500 once, and ``drop_once``
file names have their upload connection closed half-way (once).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

UPLOAD_TYPES = {"publication", "poster", "presentation", "dataset", "image", "video", "software", "lesson",
                "physicalobject", "other"}
ACCESS = {"open", "embargoed", "restricted", "closed"}
LICENSES = {"cc-by-4.0", "cc-by-nc-sa-4.0", "cc0-1.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "odbl-1.0", "mit",
            "apache-2.0"}  # a part of Zenodo's license vocabulary (SPDX ids, lower case)


def metadata_errors(meta: dict[str, Any]) -> list[dict[str, str]]:
    """What Zenodo's deposit API would reject in ``meta``, as its ``errors`` list."""
    errors = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": f"metadata.{field}", "message": message})

    if meta.get("upload_type") not in UPLOAD_TYPES:
        bad("upload_type", "Invalid upload type.")
    for field in ("title", "description"):
        if not str(meta.get(field) or "").strip():
            bad(field, "Missing data for required field.")
    creators = meta.get("creators")
    if not isinstance(creators, list) or not creators:
        bad("creators", "Missing data for required field.")
    else:
        for i, creator in enumerate(creators):
            if not isinstance(creator, dict) or not str(creator.get("name") or "").strip():
                bad(f"creators.{i}.name", "Missing data for required field.")
            elif "orcid" in creator and not re.fullmatch(r"\d{4}-\d{4}-\d{4}-\d{3}[\dX]", str(creator["orcid"])):
                bad(f"creators.{i}.orcid", "Not a valid ORCID identifier.")
    access = meta.get("access_right", "open")
    if access not in ACCESS:
        bad("access_right", "Invalid access right.")
    if access in ("open", "embargoed") and meta.get("license") not in LICENSES:
        bad("license", f"Invalid license {meta.get('license')!r}.")
    if "publication_date" in meta:
        try:
            datetime.date.fromisoformat(str(meta["publication_date"]))
        except ValueError:
            bad("publication_date", "Not a valid date.")
    if not all(isinstance(k, str) for k in meta.get("keywords", [])):
        bad("keywords", "Not a valid string.")
    for i, item in enumerate(meta.get("related_identifiers", [])):
        if not item.get("identifier") or not item.get("relation"):
            bad(f"related_identifiers.{i}", "Missing data for required field.")
    return errors


class FakeZenodo:
    def __init__(self, token: str = "secret-token", max_bytes: int = 50 * 2**20, max_files: int = 100,
                 quota_bytes: int = 50 * 10**9) -> None:
        self.token, self.max_bytes, self.max_files, self.quota_bytes = token, max_bytes, max_files, quota_bytes
        self.depositions: dict[int, dict[str, Any]] = {}
        self.files: dict[int, dict[str, dict[str, Any]]] = {}
        self.fail_once: set[str] = set()
        self.drop_once: set[str] = set()
        self.requests: list[tuple[str, str, str]] = []  # method, path, Authorization header
        self._next = 100
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()

    def _deposition(self, concept: int | None = None) -> dict[str, Any]:
        self._next += 1
        n = self._next
        record = {"id": n, "conceptrecid": str(concept or n + 1000), "state": "unsubmitted", "submitted": False,
                  "metadata": {}, "links": {"bucket": f"{self.url}/api/files/bucket-{n}",
                                            "self": f"{self.url}/api/deposit/depositions/{n}",
                                            "html": f"{self.url}/deposit/{n}"}}
        self.depositions[n] = record
        self.files[n] = {}
        return record

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                path = self.path
                fake.requests.append((method, path, self.headers.get("Authorization", "")))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(401, {"status": 401, "message": "The server could not verify that you are "
                                                                       "authorized to access the URL requested."})
                if path in fake.fail_once:
                    fake.fail_once.discard(path)
                    return self._send(500, {"status": 500, "message": "Internal Server Error"})
                length = int(self.headers.get("Content-Length") or 0)
                if m := re.fullmatch(r"/api/files/bucket-(\d+)/(.+)", path):
                    n, name = int(m.group(1)), m.group(2)
                    if length > fake.max_bytes:
                        self.rfile.read(length)  # drain the body, so the client reads the answer, not a broken pipe
                        return self._send(413, {"status": 413, "message": "Request Entity Too Large"})
                    if name in fake.drop_once:
                        fake.drop_once.discard(name)
                        self.rfile.read(length // 2)
                        self.connection.shutdown(2)  # the connection drops mid-upload
                        return None
                    held = {k: v for k, v in fake.files[n].items() if k != name}
                    if len(held) + 1 > fake.max_files:
                        self.rfile.read(length)
                        return self._send(400, {"status": 400, "message": "Too many files."})
                    if sum(v["filesize"] for v in held.values()) + length > fake.quota_bytes:
                        self.rfile.read(length)
                        return self._send(400, {"status": 400, "message": "Bucket quota exceeded."})
                    data = self.rfile.read(length)
                    entry = {"id": f"f{len(fake.files[n]) + 1}-{n}", "filename": name, "filesize": len(data),
                             "checksum": hashlib.md5(data).hexdigest()}
                    fake.files[n][name] = entry
                    return self._send(201, {"key": name, "size": len(data), "checksum": f"md5:{entry['checksum']}"})
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                if method == "POST" and path == "/api/deposit/depositions":
                    return self._send(201, fake._deposition())
                m = re.fullmatch(r"/api/deposit/depositions/(\d+)(/.*)?", path)
                if not m or int(m.group(1)) not in fake.depositions:
                    return self._send(404, {"status": 404, "message": "PID does not exist."})
                n, rest = int(m.group(1)), m.group(2) or ""
                record = fake.depositions[n]
                if method == "GET" and rest == "":
                    return self._send(200, record)
                if method == "PUT" and rest == "":
                    if record["submitted"]:
                        return self._send(400, {"status": 400, "message": "Published depositions cannot be edited."})
                    errors = metadata_errors(body.get("metadata") or {})
                    if errors:
                        return self._send(400, {"status": 400, "message": "Validation error.", "errors": errors})
                    record["metadata"] = body["metadata"]
                    return self._send(200, record)
                if method == "GET" and rest == "/files":
                    return self._send(200, list(fake.files[n].values()))
                if method == "DELETE" and (d := re.fullmatch(r"/files/(.+)", rest)):
                    fake.files[n] = {k: v for k, v in fake.files[n].items() if v["id"] != d.group(1)}
                    return self._send(204)
                if method == "POST" and rest == "/actions/publish":
                    errors = metadata_errors(record["metadata"])
                    if not fake.files[n]:
                        errors.append({"field": "files", "message": "Minimum one file must be provided."})
                    if errors:
                        return self._send(400, {"status": 400, "message": "Validation error.", "errors": errors})
                    record.update(state="done", submitted=True, doi=f"10.5072/zenodo.{n}", record_id=n)
                    return self._send(202, record)
                if method == "POST" and rest == "/actions/newversion":
                    if not record["submitted"]:
                        return self._send(400, {"status": 400, "message": "Deposition not published"})
                    draft = fake._deposition(int(record["conceptrecid"]))
                    fake.files[draft["id"]] = {k: dict(v) for k, v in fake.files[n].items()}  # files carried over
                    record["links"]["latest_draft"] = draft["links"]["self"]
                    return self._send(201, record)
                return self._send(405, {"status": 405, "message": "Method not allowed"})

            def do_GET(self) -> None:  # noqa: N802
                self._route("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._route("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._route("PUT")

            def do_DELETE(self) -> None:  # noqa: N802
                self._route("DELETE")

        return Handler
