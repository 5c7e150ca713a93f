"""`ctcurate --help` and argument errors load only the command line: no array, DICOM, table or model library
(those make a start take a second; each command imports what it needs when it runs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "pandas", "pyarrow", "pydicom", "SimpleITK", "scipy", "dask", "distributed", "sqlalchemy",
         "great_expectations", "mlcroissant", "matplotlib", "torch", "nnunetv2", "napari", "jinja2", "gdcm")

PROBE = """
import json, sys
from ctcurate.cli import main
sys.argv = ["ctcurate", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted({name.split('.')[0] for name in sys.modules})}), file=sys.stderr)
"""


def _start(args: list[str]) -> tuple[int, set[str], str]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                          timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), done.stdout + done.stderr


@pytest.mark.parametrize("args", [["--help"], ["qa", "--help"], ["release", "--help"], ["scan", "--no-such-flag"],
                                  ["no-such-command"], ["sample", "--n", "many"]])
def test_help_and_argument_errors_load_no_heavy_library(args: list[str]) -> None:
    code, modules, output = _start(args)
    assert code == (0 if args[-1] == "--help" else 2), output
    assert not modules & set(HEAVY), f"ctcurate {' '.join(args)} imported {sorted(modules & set(HEAVY))}"


def test_the_package_names_load_when_first_used() -> None:
    import curation.catalog
    import qa

    assert callable(curation.catalog.scan) and not hasattr(curation.catalog.scan, "__path__")
    assert "run_label_qa" in qa.__all__ and callable(qa.run_label_qa)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = curation.catalog.no_such_name


@pytest.mark.parametrize(("args", "line"), [
    (["scan", "--no-such-flag"], "error: No such option: --no-such-flag (Possible options: --no-full) (see "
                                 "'ctcurate scan --help')"),
    (["scna"], "error: No such command 'scna'. Did you mean 'scan'? (see 'ctcurate --help')"),
    (["sample", "--n", "many"], "error: Invalid value for '--n': Input should be a valid integer, unable to parse "
                                "string as an integer (see 'ctcurate sample --help')"),
    (["model", "add", "small"], "error: Missing argument 'folders' (see 'ctcurate model add --help')"),
])
def test_an_argument_error_is_one_line_naming_the_help(args: list[str], line: str) -> None:
    code, _, output = _start(args)
    assert code == 2 and output.splitlines()[:-1] == [line], output
