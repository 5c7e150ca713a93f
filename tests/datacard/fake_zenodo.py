"""A local HTTP server with the Zenodo deposit endpoints ctcurate uses, in Zenodo's request/response shapes.

Failures can be planted: a wrong token gets 401, a file over ``max_bytes`` 413, ``fail_once`` paths
answer 500 once, and ``drop_once`` file names have their upload connection closed half-way (once).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeZenodo:
    def __init__(self, token: str = "secret-token", max_bytes: int = 50 * 2**20) -> None:
        self.token, self.max_bytes = token, max_bytes
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
                    record["metadata"] = body["metadata"]
                    return self._send(200, record)
                if method == "GET" and rest == "/files":
                    return self._send(200, list(fake.files[n].values()))
                if method == "DELETE" and (d := re.fullmatch(r"/files/(.+)", rest)):
                    fake.files[n] = {k: v for k, v in fake.files[n].items() if v["id"] != d.group(1)}
                    return self._send(204)
                if method == "POST" and rest == "/actions/publish":
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
