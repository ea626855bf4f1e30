"""`bsbench export --format vllm RECORD`: a run record in another tool's result layout."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bsbench.jsonio import write_json_atomic
from bsbench.paths import check_output_file
from bsbench.record import read_record


@click.command("export")
@click.argument("record_path", metavar="RECORD", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["vllm"]), required=True,
              help="vllm: vLLM's benchmark result JSON (`vllm bench serve --save-result --save-detailed`).")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of stdout.")
def command(record_path: Path, fmt: str, out: Path | None) -> None:
    """Write a run record in vLLM's result layout; `bsbench compare` reads it back beside bsbench records."""
    if out is not None:
        check_output_file(out, "--out")
    # lazy: loads numpy
    from bsbench.report.vllm_result import vllm_layout

    layout = vllm_layout(read_record(record_path))
    if out is None:
        click.echo(json.dumps(layout, indent=2))
    else:
        write_json_atomic(layout, out)
        click.echo(f"wrote {out}", err=True)
