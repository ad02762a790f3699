"""The project as a published open book: licences, citation, workflows, metadata, launch cell.

The citation file and the workflows are validated with ``check-jsonschema`` against the
schemas it ships (the Citation File Format's and GitHub's workflow schema), offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from book_metadata import RULES, disagreements, read_metadata, sync
from conftest import PROJECT_ROOT

META = read_metadata(PROJECT_ROOT)
WORKFLOWS = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.yml"))
CHAPTERS = sorted((PROJECT_ROOT / "chapters").glob("*.ipynb"))


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess:
    """``check-jsonschema`` with one of its built-in (vendored) schemas: no network."""
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


# ---------------------------------------------------------------------------------------
# Licences and citation
# ---------------------------------------------------------------------------------------

def test_code_licence_is_the_declared_mit():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (PROJECT_ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_text_licence_is_cc_by_sa_4_with_its_legal_code():
    text = (PROJECT_ROOT / "LICENSE-CONTENT.md").read_text()
    assert "https://creativecommons.org/licenses/by-sa/4.0/" in text
    # The whole legal code, not only a pointer to it.
    for heading in [f"Section {n} –" for n in range(1, 9)]:
        assert heading in text, f"the CC BY-SA 4.0 legal code lacks {heading!r}"


def test_data_licence_and_attribution_stay_with_the_data():
    text = (PROJECT_ROOT / "data" / "mnist" / "README.md").read_text()
    assert "CC BY-SA 3.0" in text and "https://creativecommons.org/licenses/by-sa/3.0/" in text
    for name in ("LeCun", "Cortes", "Burges"):
        assert name in text


def test_citation_file_is_valid_cff():
    result = check_jsonschema("vendor.citation-file-format", PROJECT_ROOT / "CITATION.cff")
    assert result.returncode == 0, result.stdout + result.stderr
    cff = read_yaml(PROJECT_ROOT / "CITATION.cff")
    assert cff["preferred-citation"]["year"] == META.year
    assert set(cff["license"]) == {"MIT", "CC-BY-SA-4.0"}


def test_citation_validator_rejects_broken_files(tmp_path):
    no_authors, not_a_url = read_yaml(PROJECT_ROOT / "CITATION.cff"), read_yaml(PROJECT_ROOT / "CITATION.cff")
    del no_authors["authors"]  # required by the format
    not_a_url["repository-code"] = "github/mnist-book"
    files = [tmp_path / "no_authors.cff", tmp_path / "not_a_url.cff"]
    for path, cff in zip(files, (no_authors, not_a_url)):
        path.write_text(yaml.safe_dump(cff))
    result = check_jsonschema("vendor.citation-file-format", *files)
    assert result.returncode == 1
    assert "'authors' is a required property" in result.stdout and "'github/mnist-book' does not match" in result.stdout


# ---------------------------------------------------------------------------------------
# Metadata: one place (pyproject.toml), repeated where files cannot read it
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("glob", sorted({rule.glob for rule in RULES}))
def test_metadata_agree_with_pyproject(glob):
    problems = disagreements(PROJECT_ROOT, META, [rule for rule in RULES if rule.glob == glob])
    assert not problems, "\n".join(problems) + "\nfix: make metadata (python tests/book_metadata.py)"


def test_moving_the_repository_is_one_line_and_make_metadata(tmp_path):
    for name in {rule.glob for rule in RULES} - {"chapters/*.ipynb"}:
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    (tmp_path / "chapters").mkdir()
    (tmp_path / "mnist_lib").mkdir()  # the version is read from the package
    shutil.copy(PROJECT_ROOT / "mnist_lib" / "__init__.py", tmp_path / "mnist_lib" / "__init__.py")
    chapter = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f'pip_install("mnist_lib[notebook] @ git+{META.repository}")', id="launch")])
    nbformat.write(chapter, tmp_path / "chapters" / "01_x.ipynb")

    pyproject = tmp_path / "pyproject.toml"
    line = f'repository = "{META.repository}"\n'
    assert pyproject.read_text().count(line) == 1
    pyproject.write_text(pyproject.read_text().replace(line, 'repository = "https://github.com/Someone/their-book"\n'))
    assert disagreements(tmp_path)  # every other file still names the old repository

    sync(tmp_path)
    assert disagreements(tmp_path) == []
    moved = read_metadata(tmp_path)
    assert moved.pages == "https://someone.github.io/their-book/"
    assert read_yaml(tmp_path / "_config.yml")["repository"]["url"] == "https://github.com/Someone/their-book"
    assert read_yaml(tmp_path / "CITATION.cff")["url"] == moved.pages
    assert "git+https://github.com/Someone/their-book" in (tmp_path / "chapters" / "01_x.ipynb").read_text()
    for name in ("_config.yml", "CITATION.cff", "README.md", "pyproject.toml"):
        assert META.repository not in (tmp_path / name).read_text(), name


# ---------------------------------------------------------------------------------------
# Workflows
# ---------------------------------------------------------------------------------------

def test_workflows_match_githubs_schema():
    assert {p.name for p in WORKFLOWS} >= {"test.yml", "pages.yml"}
    result = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_schema_rejects_a_broken_workflow(tmp_path):
    workflow = read_yaml(PROJECT_ROOT / ".github" / "workflows" / "test.yml")
    del workflow["jobs"]["test"]["runs-on"]  # a job needs a runner
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(workflow))
    result = check_jsonschema("vendor.github-workflows", broken)
    assert result.returncode == 1 and "runs-on" in result.stdout


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_test_workflow_runs_make_test():
    workflow = read_yaml(PROJECT_ROOT / ".github" / "workflows" / "test.yml")
    assert "make test" in [step.get("run", "").strip() for step in _steps(workflow)]


def test_pages_workflow_publishes_the_book_from_main():
    workflow = read_yaml(PROJECT_ROOT / ".github" / "workflows" / "pages.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"]["pages"] == "write" and workflow["permissions"]["id-token"] == "write"
    steps = _steps(workflow)
    assert "make book" in [step.get("run", "").strip() for step in steps]
    used = [step.get("uses", "").split("@")[0] for step in steps]
    assert "actions/upload-pages-artifact" in used and "actions/deploy-pages" in used
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"


# ---------------------------------------------------------------------------------------
# The website's buttons and the chapters' launch cell
# ---------------------------------------------------------------------------------------

def test_site_buttons_and_favicon_are_configured():
    config = read_yaml(PROJECT_ROOT / "_config.yml")
    assert config["repository"]["url"] == META.repository
    html = config["html"]
    assert html["use_repository_button"] and html["use_issues_button"] and html["use_edit_page_button"]
    assert (PROJECT_ROOT / html["favicon"]).is_file()
    launch = config["launch_buttons"]
    assert launch["binderhub_url"].startswith("https://") and launch["colab_url"].startswith("https://")
    assert "CC BY-SA 4.0" in html["extra_footer"] and "MIT" in html["extra_footer"]


def launch_cell(notebook: Path) -> nbformat.NotebookNode | None:
    """The first code cell of ``notebook``."""
    cells = nbformat.read(notebook, as_version=4).cells
    return next((cell for cell in cells if cell.cell_type == "code"), None)


def launch_source() -> str:
    """The launch cell's source, as the first chapter has it."""
    cell = launch_cell(CHAPTERS[0])
    if cell is None or 'find_spec("mnist_lib")' not in cell.source:
        pytest.fail(f"{CHAPTERS[0].name}: its first code cell is not the launch cell (the cell that "
                    "installs mnist_lib where it is missing, tagged remove-cell, as in the other chapters)")
    return cell.source


def test_every_chapter_starts_with_the_same_hidden_launch_cell():
    source = launch_source()
    assert f"git+{META.repository}" in source
    for notebook in CHAPTERS:
        cell = launch_cell(notebook)
        assert cell.source == source, f"{notebook.name}: its first code cell differs from {CHAPTERS[0].name}'s launch cell"
        assert "remove-cell" in cell.metadata.get("tags", []), f"{notebook.name}: the launch cell is not hidden"


# Runs the launch cell (read from stdin) in an interpreter without site-packages, where
# mnist_lib cannot be found, unless the argument's folder holds a stand-in. The stubbed
# installer records its command and "installs" a stand-in mnist_lib into that folder.
HARNESS = r"""
import json, subprocess, sys
from pathlib import Path

site = Path(sys.argv[1])
sys.path.insert(0, str(site))
STAND_IN = "calls = []\ndef load_mnist(**kwargs):\n    calls.append(kwargs)\n"
pip_calls = []

def fake_check_call(args, **kwargs):
    pip_calls.append(list(args))
    (site / "mnist_lib").mkdir(exist_ok=True)
    (site / "mnist_lib" / "__init__.py").write_text(STAND_IN)
    return 0

subprocess.check_call = fake_check_call
exec(compile(sys.stdin.read(), "launch cell", "exec"), {"__name__": "__main__"})
import mnist_lib
print(json.dumps({"pip": pip_calls, "load_mnist": mnist_lib.calls}))
"""


def run_launch_cell(source: str, site: Path) -> dict:
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", HARNESS, str(site)], input=source,
                          capture_output=True, text=True, timeout=60, cwd=site)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_launch_cell_installs_the_library_where_it_is_missing(tmp_path):
    ran = run_launch_cell(launch_source(), tmp_path)
    assert len(ran["pip"]) == 1
    command = ran["pip"][0]
    assert command[1:4] == ["-m", "pip", "install"]
    assert any(arg.startswith("mnist_lib") and arg.endswith(f"@ git+{META.repository}") for arg in command), command
    assert ran["load_mnist"] == [{"download": True}]  # MNIST into the user cache


def test_launch_cell_does_nothing_where_the_library_is_installed(tmp_path, monkeypatch):
    (tmp_path / "mnist_lib").mkdir()
    (tmp_path / "mnist_lib" / "__init__.py").write_text("calls = []\n")
    assert run_launch_cell(launch_source(), tmp_path) == {"pip": [], "load_mnist": []}
    # And in this environment (mnist_lib installed for real): nothing is run.
    ran = []
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: ran.append(a))
    exec(compile(launch_source(), "launch cell", "exec"), {})
    assert ran == []


# ---------------------------------------------------------------------------------------
# The PDF (make test-pdf: make pdf first, a few minutes, so not part of make test)
# ---------------------------------------------------------------------------------------

PDF = PROJECT_ROOT / "_build" / "pdf" / "book.pdf"


def toc_files(entry: dict) -> list[str]:
    """The files of _toc.yml in reading order (root, parts, chapters, sections)."""
    found = [entry["file"]] if "file" in entry else []
    found += [entry["root"]] if "root" in entry else []
    for key in ("parts", "chapters", "sections"):
        for child in entry.get(key, []):
            found += toc_files(child)
    return found


def first_heading(name: str) -> str:
    """The title of a book file: its first level-1 Markdown heading."""
    path = next(PROJECT_ROOT.glob(name + ".*"))
    if path.suffix == ".ipynb":
        text = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown")
    else:
        text = path.read_text()
    return re.search(r"^# (.+)$", text, re.M).group(1).strip()


@pytest.mark.skipif(os.environ.get("MNIST_PDF_TESTS") != "1", reason="the PDF is checked by make test-pdf")
def test_pdf_has_every_chapter_each_on_a_page_of_its_own():
    if not PDF.exists():
        pytest.fail(f"no PDF at {PDF}; run make pdf", pytrace=False)
    titles = [first_heading(name) for name in toc_files(read_yaml(PROJECT_ROOT / "_toc.yml"))]
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(PDF), "-"], capture_output=True, text=True,
                          check=True).stdout
    pages = [" ".join(page.split()) for page in text.split("\f") if page.strip()]
    assert len(pages) >= 2 * len(titles), f"only {len(pages)} pages for {len(titles)} chapters"
    # Each chapter starts a page, under its title (the contents list alone would not do).
    starts = [page[:200] for page in pages]
    missing = [title for title in titles if not any(start.startswith(title) for start in starts)]
    assert not missing, f"chapters without a page that starts with their title: {missing}"

