"""`bsbench export --format json|vllm RECORD`: a run record as one JSON file (rows inline), or in vLLM's layout."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bsbench.jsonio import write_json_atomic, write_text_atomic
from bsbench.paths import check_output_file
from bsbench.record import read_record
from bsbench.record.io import export_text


@click.command("export")
@click.argument("record_path", metavar="RECORD", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["json", "vllm"]), required=True,
              help="json: the whole record as one JSON file, its rows inline (bsbench reads it back as a record); "
                   "vllm: vLLM's benchmark result JSON (`vllm bench serve --save-result --save-detailed`).")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of stdout.")
def command(record_path: Path, fmt: str, out: Path | None) -> None:
    """Write a run record as one JSON file or in vLLM's result layout; `bsbench compare` reads both back."""
    if out is not None:
        check_output_file(out, "--out")
    if fmt == "json":
        text = export_text(read_record(record_path))
        if out is None:
            click.echo(text, nl=False)
        else:
            write_text_atomic(text, out)
            click.echo(f"wrote {out}", err=True)
        return
    # lazy: loads numpy
    from bsbench.report.vllm_result import vllm_layout

    layout = vllm_layout(read_record(record_path))
    if out is None:
        click.echo(json.dumps(layout, indent=2))
    else:
        write_json_atomic(layout, out)
        click.echo(f"wrote {out}", err=True)
