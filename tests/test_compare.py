"""`bsbench compare` end to end on saved records (the click command, called directly)."""

from __future__ import annotations

import base64
import json
import re

from click.testing import CliRunner

from bsbench.commands.compare import command
from bsbench.record import save_record

try:
    from record_factory import make_record
except ImportError:
    from tests.record_factory import make_record


def _folder(tmp_path):
    runs = tmp_path / "runs"
    save_record(make_record("continuous", speed=1.0), runs)
    save_record(make_record("static", speed=1.5, pad=3), runs)
    save_record(make_record("static", 8.0, fingerprint="fp-other"), runs / "other")
    (runs / "sweep_summary.json").write_text(json.dumps({"kind": "bsbench-sweep-summary"}))
    return runs


def test_table_groups_and_explains(tmp_path):
    result = CliRunner().invoke(command, [str(_folder(tmp_path)), "--reference", "continuous"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Group 1" in out and "Group 2" in out
    assert "not comparable: different request lists (rate 4 vs 8)" in " ".join(out.split())
    assert "1.50x" in out  # static's TTFT relative to continuous


def test_formats(tmp_path):
    runs = _folder(tmp_path)
    md = CliRunner().invoke(command, [str(runs), "--format", "markdown"])
    assert md.exit_code == 0 and "| metric | continuous | static |" in md.stdout
    csv = CliRunner().invoke(command, [str(runs), "--format", "csv"])
    assert csv.exit_code == 0 and csv.stdout.startswith("metric,group,")
    js = CliRunner().invoke(command, [str(runs), "--format", "json"])
    data = json.loads(js.stdout)
    assert len(data["groups"]) == 2 and len(data["not_comparable"]) == 1


def test_html_is_one_self_contained_file_with_plots_embedded(tmp_path):
    runs = _folder(tmp_path)
    html = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(command, [str(runs), "--html", str(html), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html"]  # no plots folder beside it
    text = html.read_text()
    sources = re.findall(r"<img [^>]*src='([^']*)'", text)
    assert len(sources) == 8  # two groups, four plots each
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in text and "https://" not in text and "<script" not in text.lower()


def test_html_can_link_the_plots_of_plots_dir(tmp_path):
    runs = _folder(tmp_path)
    html = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(command, [str(runs), "--html", str(html), "--plots", str(tmp_path / "out" / "plots"),
                                          "--link-plots", "--format", "json"])
    assert result.exit_code == 0, result.output
    pngs = sorted((tmp_path / "out" / "plots").glob("*.png"))
    assert len(pngs) == 8 and all(p.stat().st_size > 0 for p in pngs)
    text = html.read_text()
    for png in pngs:
        assert f"src='plots/{png.name}'" in text
    refused = CliRunner().invoke(command, [str(runs), "--html", str(html), "--link-plots"])
    assert refused.exit_code != 0 and "--plots" in str(refused.exception)


def test_unknown_reference_is_a_user_error(tmp_path):
    from bsbench.errors import BsbenchError

    result = CliRunner().invoke(command, [str(_folder(tmp_path)), "--reference", "nope"])
    assert isinstance(result.exception, BsbenchError)


def test_html_names_nothing_outside_itself(tmp_path):
    """Every src and href of compare's page is a data URI or an anchor in the page: it opens offline, as one file
    (also with --plots DIR: the page still embeds them)."""
    runs = _folder(tmp_path)
    html = tmp_path / "page.html"
    result = CliRunner().invoke(command, [str(runs), "--html", str(html), "--plots", str(tmp_path / "plots"),
                                          "--format", "json"])
    assert result.exit_code == 0, result.output
    text = html.read_text()
    targets = re.findall(r"""(?:src|href)\s*=\s*['"]?([^'" >]*)""", text, flags=re.IGNORECASE)
    anchors = set(re.findall(r"id='([^']*)'", text))
    assert len([t for t in targets if t.startswith("data:")]) == 8
    outside = [t for t in targets if not t.startswith("data:image/png;base64,") and t.lstrip("#") not in anchors]
    assert outside == []
    assert "url(" not in text and "<link" not in text.lower() and "<script" not in text.lower()
