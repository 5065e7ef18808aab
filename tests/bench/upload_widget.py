"""Benchmark: the 100 lego training images uploaded through ImageUploader in a real browser.

JupyterLab (temp home) + headless Chromium; the files are picked with Playwright's set_input_files,
sent in 1 MiB chunks over the comm, ingested, and counted as done when all 100 thumbnails show.
Prints one JSON line: transfer (all bytes acknowledged) and total (grid complete) seconds.

    .venv/bin/python tests/bench/upload_widget.py [--folder /work/shared/datasets/lego/train]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

import nbformat  # noqa: E402
from lab_harness import open_browser, run_notebook, running_lab  # noqa: E402

SETUP = """from nerf_widgets import Studio
from nerf_widgets.widgets import ImageUploader
uploader = ImageUploader(Studio().create_project("bench upload"))
uploader"""


def bench_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell('print("READY")')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    path = folder / "bench_upload.ipynb"
    nbformat.write(nb, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/work/shared/datasets/lego/train"))
    args = parser.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.is_file())
    with tempfile.TemporaryDirectory(prefix="nw-bench-") as tmp:
        work = Path(tmp)
        with running_lab(work, [bench_notebook(work)]) as lab, open_browser() as page:
            run_notebook(page, lab, "bench_upload.ipynb", done_text="READY", timeout_s=120)
            uploader = page.locator(".nw-uploader")
            uploader.wait_for()
            start = time.perf_counter()
            uploader.locator("input.nw-file-input").set_input_files([str(p) for p in files])
            page.locator(".nw-ingest-progress").wait_for(state="attached", timeout=300_000)
            transfer = time.perf_counter() - start
            page.wait_for_function(f"document.querySelectorAll('.nw-thumb img.nw-thumb-img').length === {len(files)}",
                                   timeout=600_000, polling=100)
            total = time.perf_counter() - start
            stored = _stored(lab.home)
    print(json.dumps({"bench": "upload_widget", "files": len(files), "mib": round(sum(p.stat().st_size for p in files) / 2**20, 1),
                      "transfer_s": round(transfer, 2), "total_s": round(total, 2), **stored,
                      "cpus": os.cpu_count(), "load1": round(os.getloadavg()[0], 1)}))


def _stored(home: Path) -> dict[str, int]:
    from nerf_widgets.studio import Studio

    with Studio(home) as studio:
        (project,) = studio.projects()
        images = project.images()
        thumbs = sum(project.image_path(i.id, "thumbnail").is_file() for i in images)
        return {"stored": len(images), "with_alpha": sum(i.has_alpha for i in images), "thumbnails": thumbs}


if __name__ == "__main__":
    main()
