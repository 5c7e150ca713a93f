"""Every HTML page ctcurate writes works offline: nothing fetched from another host, Data Docs' lists filled."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from curation import Workspace
from datacard.datasheet import build_datasheet
from qa import run_meta_qa
from qa.offline import external_references, make_offline

# the shape Great Expectations 1.24 gives its index page (trimmed): CDN assets, a bootstrap-table filled by a script
GX_PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<link href="./static/styles/data_docs_default_styles.css" rel="stylesheet">
<style>.navbar-brand a { background: url('https://great-expectations-web-assets.s3.amazonaws.com/full_logo_dark.png') }
</style></head><body>
<img
  src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1&dataContextId=85a2d4eb"
  alt="Great Expectations">
<table
  id="section-1-table"
  class="table-sm" data-toggle="table"
>
</table>
<script>
  $('#section-1-table').bootstrapTable(
    Object.assign(
      {
        columns: [{'field': 'validation_success', 'title': 'Status'}, {'field': 'asset_name', 'title': 'Asset Name'}],
        data: [{'validation_success': '<i class="fas fa-times text-danger" ></i>', 'asset_name': 'cases',
                '_validation_success_text': 'Failed', '_table_row_link_path': 'validations/cases/x.html'},
               {'validation_success': '<i class="fas fa-check-circle text-success" ></i>', 'asset_name': "pa'tients",
                '_validation_success_text': 'Success', '_table_row_link_path': 'validations/patients/y.html'}],
      }, {}));
</script></body></html>"""


def test_what_a_page_would_fetch_is_found() -> None:
    page = ("<html><head><script src='https://cdn.example/x.js'></script><link rel=stylesheet href='//cdn/x.css'>"
            "<link rel=icon href='./static/favicon.ico'><style>@import 'https://fonts/x.css'; body{}</style></head>"
            "<body><img src='http://host/logo.png'><img src='local.png'><div style=\"background:url(https://h/b.png)\">"
            "</div><a href='https://greatexpectations.io'>a link is not fetched</a></body></html>")
    found = external_references(page)
    assert found == ["<script src> https://cdn.example/x.js", "<link rel=stylesheet> //cdn/x.css",
                     "<style> @import https://fonts/x.css", "<img src> http://host/logo.png",
                     "<div style> url() https://h/b.png"]


def test_data_docs_are_made_to_work_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "static" / "images").mkdir(parents=True)
    (site / "static" / "styles").mkdir(parents=True)
    (site / "static" / "styles" / "data_docs_default_styles.css").write_text(
        ".navbar-brand a { background: url('https://great-expectations-web-assets.s3.amazonaws.com/dark.png') }")
    (site / "index.html").write_text(GX_PAGE)
    (site / "validations").mkdir()
    (site / "validations" / "page.html").write_text(GX_PAGE)
    assert len(external_references(site / "index.html")) == 4
    assert make_offline(site) == 2 and make_offline(site) == 0  # a second run changes nothing
    for page in [*site.rglob("*.html"), *site.rglob("*.css")]:
        assert external_references(page) == [], page
    index = (site / "index.html").read_text()
    rows = re.findall(r"<tr>(.*?)</tr>", index.split("<tbody>")[1])
    assert len(rows) == 2 and "href='validations/cases/x.html'" in rows[0] and "Failed" in rows[0]
    assert "\u2714" in rows[1] and "Success" in rows[1] and "pa'tients" in rows[1]
    assert 'src="static/images/logo-long.png"' in index and "dataContextId" not in index
    assert 'href="../static/styles/ctcurate_offline.css"' in (site / "validations" / "page.html").read_text()
    assert (site / "static" / "styles" / "ctcurate_offline.css").is_file()


def test_every_page_ctcurate_writes_fetches_nothing(demo_run, tmp_path: Path) -> None:
    workspace = Path(demo_run.workspace)
    sheet = build_datasheet(Workspace.open(workspace), out=tmp_path / "datasheet")
    pages = [*sorted(workspace.rglob("*.html")), sheet.html]
    assert any("data_docs" in p.parts for p in pages) and any(p.parent.name == "report" for p in pages)
    for page in pages + sorted(workspace.rglob("*.css")):
        assert external_references(page) == [], page
    # Data Docs of a failing suite: its row is written into the index, linking to its page
    meta = pd.read_parquet(workspace / "releasable" / "tables" / "meta.parquet")
    run_meta_qa(tmp_path / "qa", cases=meta.assign(age=250))
    result = run_meta_qa(tmp_path / "qa", cases=meta)  # a second run rewrites the index
    assert result.data_docs is not None
    index = result.data_docs.read_text()
    links = re.findall(r"<td><a href='(validations/[^']+)'>", index)
    assert len(links) == 4 and all((result.data_docs.parent / link).is_file() for link in links)
    assert index.count("Failed") >= 1 and index.count("Success") >= 3
    for page in result.data_docs.parent.rglob("*.html"):
        assert external_references(page) == [], page
