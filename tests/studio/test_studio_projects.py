"""Studio project CRUD against a real home: validation, listing, deletion, concurrency, locks."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import nerf_widgets
from nerf_widgets.core.errors import NotFoundError, ResourceUnavailableError, ValidationError
from nerf_widgets.studio import Studio
from tests.waiting import blocked_in, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_lazy_package_exports() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, nerf_widgets; s = nerf_widgets.Studio; "
         "print('torch' in sys.modules, 'PIL' in sys.modules, s.__name__)"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert out.stdout.split() == ["False", "False", "Studio"]
    assert nerf_widgets.Project.__name__ == "Project"


def test_create_list_open_delete(studio: Studio) -> None:
    a = studio.create_project("  Lego  ", "the bulldozer")
    b = studio.create_project("<b>Fern</b>")
    assert (a.name, a.description, a.state) == ("Lego", "the bulldozer", "Created")
    assert b.name == "<b>Fern</b>"  # stored verbatim, escaping is the widget's job
    assert [p.id for p in studio.projects()] == [b.id, a.id]
    assert studio.project(a.id).name == "Lego"
    for sub in ("originals", "images", "thumbs", "poses", "runs", "exports"):
        assert (a.dir / sub).is_dir()
    assert a.dir == studio.home / "projects" / a.id
    studio.delete_project(a.id)
    assert not a.dir.exists()
    assert [p.id for p in studio.projects()] == [b.id]
    with pytest.raises(NotFoundError, match=a.id):
        studio.project(a.id)
    with pytest.raises(NotFoundError, match=f"No project with id '{a.id}'"):
        studio.delete_project(a.id)
    assert studio.db.query("SELECT * FROM state_history WHERE project_id = ?", (a.id,)) == []


@pytest.mark.parametrize(
    ("name", "match"),
    [("", "empty"), ("   ", "empty"), ("x" * 101, "limit is 100"), ("a\x00b", "control"), ("a\nb", "control"),
     (42, "must be text")],
)
def test_bad_project_names(studio: Studio, name: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        studio.create_project(name)  # type: ignore[arg-type]
    assert studio.projects() == []
    assert list((studio.home / "projects").iterdir()) == []


def test_duplicate_name_is_refused_case_insensitively(studio: Studio) -> None:
    studio.create_project("Lego")
    with pytest.raises(ValidationError, match="already exists"):
        studio.create_project("LEGO")
    assert len(studio.projects()) == 1
    assert len(list((studio.home / "projects").iterdir())) == 1


@pytest.mark.parametrize("bad", ["../etc", "prj_../../x", "img_0123456789abcdef", "prj_0123456789ABCDEF"])
def test_malformed_ids_are_refused(studio: Studio, bad: str) -> None:
    with pytest.raises(ValidationError, match=r"is not a (valid|prj) id"):
        studio.project(bad)
    with pytest.raises(ValidationError, match=r"is not a (valid|prj) id"):
        studio.delete_project(bad)


def test_two_studios_and_a_subprocess_share_a_home(home: Path) -> None:
    s1, s2 = Studio(home), Studio(home)
    code = ("import sys; from nerf_widgets import Studio; s = Studio(sys.argv[1]); "
            "[s.create_project(f'proc {i}') for i in range(15)]")
    proc = subprocess.Popen([sys.executable, "-c", code, str(home)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    threads = [threading.Thread(target=lambda s=s, k=k: [s.create_project(f"s{k} {i}") for i in range(15)])
               for k, s in enumerate((s1, s2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    names = {p.name for p in Studio(home).projects()}
    assert len(names) == 45 and {"proc 0", "s0 14", "s1 7"} <= names
    p = s1.projects()[0]
    p.transition("upload_images", "from s1")
    assert s2.project(p.id).state == "ImagesUploaded"


def test_project_lock_conflict_names_the_holder(studio: Studio) -> None:
    p = studio.create_project("Busy")
    with p.lock("training"):
        with pytest.raises(ResourceUnavailableError, match="training"):
            with p.lock("training"):
                pass
        with pytest.raises(ResourceUnavailableError, match="busy with training"):
            studio.delete_project(p.id)
        assert p.dir.exists() and studio.project(p.id)
    with p.lock("training"):
        pass


_HOLD = """
import sys
from nerf_widgets.store.locks import project_lock
with project_lock(sys.argv[1], purpose="training"):
    print("held", flush=True)
    sys.stdin.readline()  # held until the test says so: no clock involved
"""


def test_project_lock_across_processes_and_wait(studio: Studio) -> None:
    p = studio.create_project("Shared")
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(p.dir)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout and proc.stdin and proc.stdout.readline().strip() == "held"
    with pytest.raises(ResourceUnavailableError, match=r"training \(pid \d+"):
        with p.lock("training"):
            pass
    acquired = threading.Event()

    def wait_for_lock() -> None:
        with p.lock("training", timeout=120):  # waits until the other kernel is done
            acquired.set()

    waiter = threading.Thread(target=wait_for_lock)
    waiter.start()
    wait_until(lambda: blocked_in(waiter, "acquire"), what="the waiter inside the lock's acquire")
    assert not acquired.is_set()  # the other process still holds it: it has not been told to let go
    proc.stdin.write("release\n")
    proc.stdin.flush()
    assert acquired.wait(120), "the lock was not handed over"
    waiter.join()
    assert proc.wait(timeout=60) == 0
