"""The reference-answer cache that parallel grading workers share (grader.judge)."""
import threading
import time
from pathlib import Path

from traitlets.config import Config

from grader import config, judge


def _course(tmp_path, monkeypatch):
    monkeypatch.delenv(config.REFERENCE_CACHE_ENV, raising=False)   # the course's own cache
    source = tmp_path / "source" / "backprop" / "02_x.ipynb"
    source.parent.mkdir(parents=True)
    source.write_text("{}")
    cfg = Config()
    cfg.CourseDirectory.root = str(tmp_path)
    return source, cfg


def test_processes_asking_at_once_run_the_solution_once(tmp_path, monkeypatch):
    source, cfg = _course(tmp_path, monkeypatch)
    runs = []

    def slow_reference(path, cfg):
        runs.append(Path(path).name)
        time.sleep(0.5)   # long enough for every other caller to arrive meanwhile
        return {"answer_x": [{"name": "dx"}]}

    monkeypatch.setattr(judge, "reference_answers", slow_reference)
    got = []
    # separate open() calls take separate flock locks, so threads contend as processes do
    callers = [threading.Thread(target=lambda: got.append(
        judge.cached_reference_answers(source, cfg))) for _ in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert runs == ["02_x.ipynb"], f"the solution ran {len(runs)} times, expected once"
    assert got == [{"answer_x": [{"name": "dx"}]}] * 4


def test_a_changed_solution_is_run_again(tmp_path, monkeypatch):
    source, cfg = _course(tmp_path, monkeypatch)
    runs = []
    monkeypatch.setattr(judge, "reference_answers",
                        lambda path, cfg: runs.append(1) or {"n": [len(runs)]})
    assert judge.cached_reference_answers(source, cfg) == {"n": [1]}
    assert judge.cached_reference_answers(source, cfg) == {"n": [1]}   # from the cache
    source.write_text('{"changed": true}')
    assert judge.cached_reference_answers(source, cfg) == {"n": [2]}
