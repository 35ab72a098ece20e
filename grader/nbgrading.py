"""The nbgrader side of the course: a course folder, its configuration and nbgrader's API."""
import os
import shutil
import sys
import warnings
from pathlib import Path

import jinja2
import nbformat
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.apps import NbGraderAPI
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests,
                                    ClearOutput, DeduplicateIds, GetGrades, IgnorePattern,
                                    LimitOutput, OverwriteCells, OverwriteKernelspec,
                                    SaveAutoGrades)
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.utils import capture_log, temp_attrs
from traitlets.config import Config

from . import GradingError, config
from .judge import CarryAnswers, GuardedExecute, JudgeAnswers, RestoreLayout
from .preprocessors.enforce_policy import EnforcePolicy
from .preprocessors.events import NOTES_KEY, GradingNotes
from .preprocessors.formula_checks import FormulaChecks
from .preprocessors.restore_metadata import RestoreMetadata
from .outputs import without_outputs_record

# nbgrader's gradebook code triggers SQLAlchemy session notices that are not problems
warnings.filterwarnings("ignore", module="nbgrader")


class _CompiledTemplates(jinja2.BytecodeCache):
    """Compiled Jinja templates kept in memory (keyed by name and source checksum)."""

    def __init__(self):
        self.code = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket):
        self.code[bucket.key] = bucket.bytecode_to_string()


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback HTML, with the templates compiled once per process instead of once
    per student (nbgrader makes a new exporter for every generate_feedback call)."""

    compiled = _CompiledTemplates()

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = self.compiled
        return environment


def course_config(root, db_url=None, references=None, protected=()):
    """nbgrader configuration of the course folder at root (gradebook: db_url or SQLite there).

    Grading kernels cannot read the course folder (but for their own notebook's folder), the
    repository (but for the grader package), the SQLite gradebook or `protected`."""
    root = Path(root).resolve()
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = config.COURSE_ID
    if db_url:
        c.CourseDirectory.db_url = db_url
    c.Execute.timeout = config.CELL_TIMEOUT
    c.Execute.iopub_timeout = config.IOPUB_WAIT
    stub = 'raise NotImplementedError("replace this line with your answer")'
    c.ClearSolutions.code_stub = {"python": f"# YOUR CODE HERE\n{stub}"}
    c.OverwriteCells.add_missing_cells = True   # a deleted test cell is put back and run
    c.ReferenceAnswers.references = references or {}
    home = Path.home()   # the grader's own secrets; kernels get a private HOME
    secrets = [home / name for name in (".pgpass", ".ssh", ".netrc", ".git-credentials",
                                        ".jupyter", ".local/share/jupyter/runtime")]
    c.GuardedExecute.protected = sorted({str(root), str(config.REPO), *sqlite_file(db_url),
                                         *map(str, secrets), *map(str, protected)})
    c.GuardedExecute.private_root = str(root / ".kernels")
    c.GuardedExecute.sandbox = not os.environ.get(config.NO_SANDBOX_ENV)
    c.Autograde.sanitize_preprocessors = [
        ClearOutput, DeduplicateIds, OverwriteKernelspec, RestoreLayout, RestoreMetadata,
        OverwriteCells, CheckCellMetadata]
    c.Autograde.autograde_preprocessors = [
        EnforcePolicy, FormulaChecks, CarryAnswers, GuardedExecute, JudgeAnswers,
        IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
        AssignLatePenalties, CheckCellMetadata]
    # feedback shows each result and its hint, never the hidden test code (nbgrader #917)
    c.GenerateFeedback.preprocessors = [ClearHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
    c.GenerateFeedback.exporter_class = FeedbackExporter
    c.ClearHiddenTests.enforce_metadata = False
    return c


def sqlite_file(db_url):
    """[the gradebook file] if db_url names a SQLite gradebook, else []."""
    if db_url and db_url.startswith("sqlite:///"):
        return [str(Path(db_url[len("sqlite:///"):]).resolve())]
    return []


def write_nbgrader_config(root, db_url=None, protected=()):
    """ROOT/nbgrader_config.py, so that plain `nbgrader autograde` (and the formgrader) in the
    course folder grade exactly as `python -m grader autograde` does."""
    lines = ["# Written by `python -m grader autograde`: grade this course as the grader does.",
             "from grader.nbgrading import course_config",
             f"c.merge(course_config({str(Path(root).resolve())!r}, db_url={db_url!r}, "
             f"protected={sorted(map(str, protected))!r}))", ""]
    (Path(root) / "nbgrader_config.py").write_text("\n".join(lines))


def nbgrader_api(root, db_url=None, references=None, protected=()):
    """NbGraderAPI on the course folder at root, with the course configuration."""
    # nbgrader runs the `alembic` executable that sits beside this Python (venv not activated)
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    cfg = course_config(root, db_url, references, protected)
    return NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)


class CourseAutograde(Autograde):
    """nbgrader's Autograde whose notebook carries GradingNotes in its resources, through
    both of nbgrader's passes (sanitising, then grading), for the grading preprocessors to
    write what happened to it (grader.preprocessors.events)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.notes = GradingNotes()

    def init_single_notebook_resources(self, notebook_filename):
        resources = super().init_single_notebook_resources(notebook_filename)
        resources[NOTES_KEY] = self.notes
        return resources


def autograde_notebook(api: NbGraderAPI, student: str, notebook: str) -> tuple[dict, GradingNotes]:
    """nbgrader's `api.autograde` for one notebook of one student: its outcome (success,
    log, error) and the notes of what happened while it was graded."""
    with temp_attrs(api.coursedir, assignment_id=config.ASSIGNMENT, student_id=student,
                    notebook_id=notebook):
        app = CourseAutograde(coursedir=api.coursedir, parent=api)
        app.force, app.create_student = True, True
        return capture_log(app), app.notes


def checked(result, what):
    """The log of a successful NbGraderAPI call; GradingError with nbgrader's error otherwise."""
    if not result["success"]:
        detail = (result.get("error") or result.get("log") or "").strip().splitlines()
        last = detail[-1] if detail else "no detail from nbgrader"
        raise GradingError(f"{what} failed: {last}")
    return result.get("log", "")


def copy_source(root):
    """Copy solutions/ into the course as the assignment's source; the copied notebooks."""
    source = Path(root) / "source" / config.ASSIGNMENT
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for nb in sorted(config.SOLUTIONS.glob("*.ipynb")):
        # solutions/ stores outputs for readers; the record of their code stays out of the release
        nbformat.write(without_outputs_record(nbformat.read(str(nb), as_version=4)),
                       str(source / nb.name))
    return sorted(source.glob("*.ipynb"))


def generate_source(root, api=None):
    """nbgrader generate_assignment of the copied source (the release and the gradebook)."""
    api = api or nbgrader_api(root)
    checked(api.generate_assignment(config.ASSIGNMENT), "nbgrader generate_assignment")


def add_source(root, api=None):
    """copy_source, then generate_source: the course ready to release or grade."""
    sources = copy_source(root)
    generate_source(root, api)
    return sources
