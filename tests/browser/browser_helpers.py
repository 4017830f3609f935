"""Helpers of the browser tests: open a notebook in JupyterLab, run it, read its errors and images."""

from __future__ import annotations

import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "_out" / "screenshots"


def open_notebook(browser, lab, name: str, height: int = 1000, folder: str = "notebooks"):
    """A new page with <folder>/<name>.ipynb open alone (a fresh workspace), its kernel idle."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.set_default_timeout(120_000)
    workspace = f"test-{secrets.token_hex(4)}"
    page.goto(f"{lab['url']}/lab/workspaces/{workspace}/tree/{folder}/{name}.ipynb"
              f"?reset&token={lab['token']}")
    try:
        page.wait_for_function("""(path) => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const session = w && w.context && w.context.path === path && w.sessionContext.session;
            return !!(session && session.kernel && session.kernel.status === 'idle');
        }""", arg=f"{folder}/{name}.ipynb", timeout=180_000, polling=500)
    except Exception:
        screenshot(page, f"debug_open_{name}")
        raise
    return page


def run_all(page, timeout_s: float = 900) -> None:
    """Run every cell and wait until all code cells have executed and the kernel is idle."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    try:
        _wait_all_run(page, timeout_s)
    except Exception:
        screenshot(page, "debug_run_all")
        raise


def _wait_all_run(page, timeout_s: float) -> None:
    page.wait_for_function("""() => {
        const nb = window.jupyterapp.shell.currentWidget;
        const cells = nb.content.widgets.filter(c => c.model.type === 'code');
        const session = nb.sessionContext.session;
        const failed = cells.some(c => Array.from({length: c.model.outputs.length},
            (_, i) => c.model.outputs.get(i).type).includes('error'));  // run-all stops at an error
        return !!(session && session.kernel && session.kernel.status === 'idle')
            && (failed || cells.every(c => c.model.executionCount !== null));
    }""", timeout=timeout_s * 1000, polling=1000)


def error_outputs(page) -> list:
    """The error outputs of the open notebook (ename: evalue)."""
    return page.evaluate("""() => {
        const nb = window.jupyterapp.shell.currentWidget.content;
        const errors = [];
        for (const cell of nb.widgets) {
            if (cell.model.type !== 'code') continue;
            const outputs = cell.model.outputs;
            for (let i = 0; i < outputs.length; i++) {
                const o = outputs.get(i).toJSON();
                if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
            }
        }
        return errors;
    }""")


def images(page, scope: str = ".jp-NotebookPanel:not(.lm-mod-hidden)") -> list:
    """[(complete, naturalWidth, src prefix)] of every <img> in `scope`."""
    return page.evaluate("""(scope) => Array.from(document.querySelectorAll(scope + ' img')).map(
        i => [i.complete, i.naturalWidth, i.src.slice(0, 30)])""", scope)


def screenshot(page, name: str, scroll_to: str | None = None) -> Path:
    """tests/_out/screenshots/<name>.png of the page (scrolled to `scroll_to` first)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if scroll_to:
        page.locator(scroll_to).first.evaluate("e => e.scrollIntoView()")
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def screenshot_images(page, name: str, scope: str = ".jp-NotebookPanel:not(.lm-mod-hidden)") -> list[Path]:
    """One screenshot per image output (the cell's output area), <name>_img<k>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    outputs = page.locator(f"{scope} .jp-OutputArea-output:has(img)")
    paths = []
    for k in range(outputs.count()):
        path = SCREENSHOTS / f"{name}_img{k}.png"
        outputs.nth(k).screenshot(path=str(path))
        paths.append(path)
    return paths
