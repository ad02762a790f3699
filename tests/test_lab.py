"""The lab copies of the chapters: their prose asks the running kernel for each glued value."""

import json

import nbformat
import pytest
from nbclient import NotebookClient

from mnist_lib.book import lab


def test_glue_roles_become_eval_expressions_of_glued():
    prose = "LeNet-5 reaches {glue:text}`lenet5_test_acc_mean:.2%` in {glue:text}`epochs` epochs; `code` stays."
    assert lab.to_lab(prose) == ("LeNet-5 reaches {eval}`book.glued('lenet5_test_acc_mean', '.2%')` in "
                                 "{eval}`book.glued('epochs', '')` epochs; `code` stays.")


def test_glued_formats_a_value_as_the_website_does(monkeypatch):
    monkeypatch.setattr(lab, "_glued", {})
    assert lab.glued("acc", ".2%") == lab.NOT_YET  # its cell has not run yet
    for name, text in {"acc": "0.98765", "n": "60000", "words": "two words"}.items():
        lab._record({"content": {"data": {"application/papermill.record/text/plain": text},
                                 "metadata": {"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}}}})
    assert (lab.glued("acc", ".2%"), lab.glued("n", ","), lab.glued("words")) == ("98.77%", "60,000", "two words")
    assert repr(lab.glued("words")) == "two words"  # JupyterLab shows the repr: words without quotes


def test_a_kernel_that_imports_the_book_remembers_what_its_cells_glue():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from myst_nb import glue\nfrom mnist_lib import book\n"
                                  "glue('acc', 0.98765, display=False)\nbook.glue_text('verdict', 'better than')"),
        nbformat.v4.new_code_cell("print(book.glued('acc', '.1%'), '|', book.glued('verdict'), '|', book.glued('x'))"),
    ])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    assert notebook.cells[1].outputs[0]["text"].strip() == f"98.8% | better than | {lab.NOT_YET}"


def test_lab_copies_are_written_once_and_a_readers_copy_is_kept(tmp_path, capsys):
    assert lab.main([str(tmp_path)]) == 0
    copy = tmp_path / "04_lenet5.ipynb"
    prose = "\n".join(c.source for c in nbformat.read(copy, as_version=4).cells if c.cell_type == "markdown")
    assert "{eval}`book.glued(" in prose and "{glue:text}" not in prose
    # before anything runs, the prose shows the committed (full) run's values, formatted as on the website
    cells = nbformat.read(copy, as_version=4).cells
    shown = {e["expression"]: e["result"]["data"]["text/plain"] for c in cells if c.cell_type == "markdown"
             for e in c.metadata.get("user_expressions", [])}
    committed = lab.glued_in(nbformat.read(lab_chapter("04_lenet5.ipynb"), as_version=4))
    expected = format(float(committed["lenet5_test_acc_mean"]), ".2%")
    assert shown["book.glued('lenet5_test_acc_mean', '.2%')"] == expected
    intro = nbformat.read(tmp_path / "01_mnist_database.ipynb", as_version=4).cells[0].metadata["user_expressions"]
    assert intro[0]["result"]["data"]["text/plain"].startswith("the full profile")
    copy.write_text(copy.read_text().replace("LeNet", "LeNet", 1) + " ")  # the reader ran or edited it
    assert lab.main([str(tmp_path)]) == 0
    assert "kept, as the reader left them" in capsys.readouterr().out and copy.read_text().endswith(" ")
    assert set(json.loads((tmp_path / ".written.json").read_text())) >= {"04_lenet5.ipynb"}


def lab_chapter(name: str):
    from mnist_lib.paths import CHECKOUT

    return CHECKOUT / "chapters" / name


def test_the_lab_command_wants_one_folder(capsys):
    assert lab.main([]) == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["{glue:text}`a`", "{glue:text}`a:.2%`"])
def test_every_glue_role_form_the_chapters_use_is_rewritten(text):
    assert "{glue" not in lab.to_lab(text)
