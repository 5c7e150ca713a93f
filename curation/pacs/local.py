"""A throwaway local PACS: Orthanc with its DICOMweb plugin (Debian packages ``orthanc`` and ``orthanc-dicomweb``).

The demo's PACS mode, the tests and the benchmarks start one on free loopback ports with a temporary
storage folder (optionally HTTP basic users), load DICOM files through its REST API, and point
``ctcurate pull`` at it, over DICOMweb (``dicomweb``) or DIMSE (``dimse``: C-FIND and C-GET from any
AE title). It can be stopped and started again on the same storage and ports, as a PACS that goes
down and comes back. Nothing here is needed to use a real PACS.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from curation.errors import PacsError
from curation.lifetime import die_with_parent

__all__ = ["LocalOrthanc", "free_port", "orthanc_installed"]

EXE = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def orthanc_installed() -> bool:
    """Whether Orthanc and its DICOMweb plugin are where Debian's packages put them."""
    return Path(EXE).is_file() and Path(PLUGIN).is_file()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalOrthanc:
    """One Orthanc server on loopback; ``users`` turns HTTP basic authentication on, ``check_called_aet`` makes
    it refuse DICOM associations not addressed to its AE title ``ORTHANC``.

    Use as a context manager, or call :meth:`start` and, at the end, :meth:`close` (which also removes
    its storage).
    """

    def __init__(self, users: dict[str, str] | None = None, *, check_called_aet: bool = False) -> None:
        if not orthanc_installed():
            raise PacsError(f"{EXE}: Orthanc with its DICOMweb plugin ({PLUGIN}) is not installed; install the "
                            "Debian packages orthanc and orthanc-dicomweb")
        self.root = Path(tempfile.mkdtemp(prefix="ctcurate-orthanc-"))
        self.port = free_port()
        self.users = users or {}
        self.url = f"http://127.0.0.1:{self.port}"
        self.dicomweb = f"{self.url}/dicom-web"
        self.accepted: list[Path] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.dicom_port = free_port()
        self.dimse = f"dicom://127.0.0.1:{self.dicom_port}/ORTHANC"
        config = {"Name": "ctcurate-test", "StorageDirectory": str(self.root / "db"),
                  "IndexDirectory": str(self.root / "db"), "HttpPort": self.port, "DicomPort": self.dicom_port,
                  "RemoteAccessAllowed": False, "HttpBindAddress": "127.0.0.1", "DicomServerEnabled": True,
                  "DicomAet": "ORTHANC", "DicomCheckCalledAet": check_called_aet, "DicomAlwaysAllowFind": True,
                  "DicomAlwaysAllowGet": True,
                  "AuthenticationEnabled": bool(self.users), "RegisteredUsers": self.users, "Plugins": [PLUGIN],
                  "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
        (self.root / "orthanc.json").write_text(json.dumps(config))

    def _request(self, path: str, data: bytes | None = None, method: str = "GET") -> Any:
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        if self.users:
            user, password = next(iter(self.users.items()))
            request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def __enter__(self) -> LocalOrthanc:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def start(self) -> LocalOrthanc:
        """Start the server (again, on the same storage and port) and wait until it answers."""
        with (self.root / "log.txt").open("a") as log:
            self.process = subprocess.Popen([EXE, str(self.root / "orthanc.json")], stdout=log,
                                            stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        for _ in range(200):
            try:
                self._request("/system")
                return self
            except (OSError, ValueError):
                time.sleep(0.05)
        self.stop()
        raise PacsError(f"{EXE}: Orthanc did not answer on port {self.port} within 10 s; see {self.root / 'log.txt'}")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (``kill``: at once, as in a crash, without finishing transfers); its storage stays."""
        if self.process is not None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(30)
            self.process = None

    def close(self) -> None:
        """Stop the server and remove its storage."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def load(self, paths: Iterable[Path]) -> list[Path]:
        """Store each file through the REST API; returns those Orthanc accepted (it refuses non-DICOM and
        DICOM without UIDs)."""
        for path in sorted(paths):
            try:
                self._request("/instances", path.read_bytes(), "POST")
                self.accepted.append(path)
            except urllib.error.HTTPError:
                continue
        return self.accepted

    def delete(self, level: str, uid: str) -> None:
        """Delete a study, series or instance given its DICOM UID (as if removed from the PACS)."""
        tag = {"studies": "StudyInstanceUID", "series": "SeriesInstanceUID", "instances": "SOPInstanceUID"}[level]
        found = self._request("/tools/find", json.dumps({"Level": {"studies": "Study", "series": "Series",
                                                                   "instances": "Instance"}[level],
                                                         "Query": {tag: uid}}).encode(), "POST")
        for orthanc_id in found:
            self._request(f"/{level}/{orthanc_id}", method="DELETE")
