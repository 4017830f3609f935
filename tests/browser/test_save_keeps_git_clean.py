"""Open and save a notebook in JupyterLab, then run and save it: git sees no change (scripts/setup.sh's
pre-save hook drops the kernel's language_info; its nbstripout filter strips outputs and counts)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from browser_helpers import ROOT, error_outputs, open_notebook, run_all, screenshot

NAME = "01_quickstart"


def git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(lab):
    """A git repository inside the lab's root with this checkout's .gitattributes, .gitignore and
    nbstripout filter (as scripts/setup.sh configures it) and notebooks/01 as committed."""
    config = subprocess.run(["git", "config", "--get-regexp", r"^filter\.nbstripout\."], cwd=ROOT,
                            capture_output=True, text=True).stdout.splitlines()
    config = dict(line.split(" ", 1) for line in config)
    committed = subprocess.run(["git", "show", f":notebooks/{NAME}.ipynb"], cwd=ROOT, capture_output=True,
                               text=True)
    if not config.get("filter.nbstripout.clean", "").startswith(".venv/bin/python ") or committed.returncode:
        pytest.skip("not a git checkout set up by scripts/setup.sh (no nbstripout filter)")
    config["filter.nbstripout.clean"] = config["filter.nbstripout.clean"].replace(".venv/bin/python",
                                                                                sys.executable, 1)
    repo = lab["root"] / "saved"
    (repo / "notebooks").mkdir(parents=True)
    git(repo, "init", "-q")
    for key, value in {"user.name": "test", "user.email": "test@localhost", **config}.items():
        git(repo, "config", key, value)
    for name in (".gitattributes", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "notebooks" / f"{NAME}.ipynb").write_text(committed.stdout)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "as committed")
    return repo


def save(page) -> None:
    """Ctrl+S in the open notebook; returns once JupyterLab has saved it."""
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty"
                           " && window.jupyterapp.shell.currentWidget.context.contentsModel.last_modified"
                           " !== window.__lastSaved")
    page.evaluate("() => { window.__lastSaved ="
                  " window.jupyterapp.shell.currentWidget.context.contentsModel.last_modified; }")


def test_open_save_run_save_leave_git_clean(browser, lab, repo):
    path = repo / "notebooks" / f"{NAME}.ipynb"
    page = open_notebook(browser, lab, NAME, folder="saved/notebooks")
    try:
        page.evaluate("() => { window.__lastSaved ="
                      " window.jupyterapp.shell.currentWidget.context.contentsModel.last_modified; }")
        opened = path.stat().st_mtime_ns
        save(page)  # opened and saved: the kernel's language_info is dropped on save (setup.sh's hook)
        assert path.stat().st_mtime_ns > opened
        assert git(repo, "status", "--porcelain") == ""
        run_all(page, timeout_s=600)
        assert error_outputs(page) == []
        save(page)
        screenshot(page, "saved_notebook")
    finally:
        page.close()
    saved = json.loads(path.read_text())
    assert any(c.get("outputs") for c in saved["cells"])  # JupyterLab saved the outputs ...
    # ... which the filter strips: git sees no change in the content. (`git status` alone lists the
    # file until it is added: git calls a file whose size changed modified before running filters.)
    assert subprocess.run(["git", "diff", "--exit-code", "--quiet"], cwd=repo).returncode == 0
    git(repo, "add", "-A")
    assert git(repo, "status", "--porcelain") == ""  # nothing to commit
