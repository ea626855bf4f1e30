"""The sweep/capacity report page: self-contained, a table of contents, the largest group first, each group's
configuration, user text escaped."""

import base64
import re

import pytest

from bsbench.report.html_page import anchor_for
from bsbench.report.html_report import NO_SLOS, describe_slos, workload_text
from tests.record_factory import make_record, simple_requests
from tests.report_pages import HOSTILE


@pytest.fixture
def page(sweep_report_page) -> str:
    return sweep_report_page.read_text()


def test_sweep_page_is_self_contained_with_contents_and_largest_group_first(page):
    # a table of contents whose every link lands on a section of the page, before the first section
    links = re.findall(r"<a href='#([a-z0-9-]+)'>", page)
    assert len(links) == 3 + 3 and page.index("class='toc'") < page.index("<h2")
    assert all(f"<h2 id='{anchor}'>" in page for anchor in links)
    titles = re.findall(r"<h2 id='[^']+'>([^<]+)</h2>", page)
    assert titles[:3] == ["Sweep overview", "Results by rate", "Plots against the rate"]
    assert [t.split(":")[0] for t in titles[3:]] == ["Group 1 (3 runs)", "Group 2 (1 runs)", "Group 3 (1 runs)"]
    assert "<td>workload seeds</td><td>0 (1 repeat)</td>" in page.replace(" class='key'", "")
    # nothing outside the file: no URL, no script, every image an embedded PNG
    assert "http://" not in page and "https://" not in page and "<script" not in page.lower()
    sources = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(sources) == 2 + 3 * 4
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_group_shows_its_configuration(page):
    first = page[page.index("<h2 id='group-1'>"):page.index("<h2 id='group-2'>")]
    for text in ("model</td><td>tiny", "device</td><td>Test CPU", "backend</td><td>real runner, measured",
                 "KV budget</td><td>64.0 MiB · 100 blocks of 16 tokens · 1,600 tokens",
                 "SLOs</td><td>TTFT &lt;= 500 ms (6 of 8 requests)", "scheduler options",
                 "{&quot;max_batch_size&quot;: 8}", "class='swatch' style='background:#d62728'"):
        assert text in first, text
    assert "SIMULATED: simulated (sim, a100-40gb, uncalibrated cost model)" in page  # the sim group, and a banner


def test_user_text_is_escaped(page):
    assert HOSTILE not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_slos_described_or_said_absent():
    assert describe_slos([make_record(requests=simple_requests(slo_ttft_ms=None))]) == NO_SLOS
    assert describe_slos([make_record()]) == "TTFT <= 500 ms (4 of 4 requests)"


def test_anchors_are_unique_and_plain():
    taken: set[str] = set()
    assert [anchor_for(t, taken) for t in ("Group 1: <x>", "Group 1: <x>", "!!!")] == \
        ["group-1-x", "group-1-x-2", "section"]


def test_workload_named_with_its_key_parameters_not_none():
    record = make_record()
    record.workload.spec.update({"name": "sharegpt-vllm", "source": "sharegpt", "filter": "vllm",
                                 "arrival": "poisson", "input_len": 512, "rate": 4.0, "e2e_slo": 20000.0})
    summary = {"workload": None, "workload_overrides": {"num_requests": 4, "e2e_slo": 20000.0}}
    text = workload_text(summary, [record])
    assert text == "test-workload · 4 requests · source sharegpt · filter vllm · arrival poisson"
    # before any run finished: the default spec's name and the options set, never 'None with {...}'
    assert workload_text(summary, []) == "sharegpt-vllm · num requests 4"
    assert workload_text({"workload": "mixed-longtail"}, []) == "mixed-longtail"


def test_sweep_page_names_the_workload(page):
    assert "None with" not in page and " with {" not in page
    assert "<td>workload</td><td>test-workload · 4 requests</td>" in page.replace(" class='key'", "")


def test_capacity_page_plots_only_its_largest_groups(tmp_path):
    from bsbench.report.html_report import CAPACITY_PLOTTED_GROUPS, write_capacity_report
    from tests.report_pages import records

    recs = records()  # three groups: 3 runs, 1 run, 1 run
    page = write_capacity_report(tmp_path, {"target": 0.9, "schedulers": {}}, recs, [["x"]], ["h"], None).read_text()
    sections = page.split("<h2 id='group-")[1:]
    plotted = [s.count("<img ") for s in sections]
    assert CAPACITY_PLOTTED_GROUPS == 2 and plotted == [4, 4, 0]
    assert "plots of this group: bsbench compare" in sections[2]
