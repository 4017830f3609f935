"""The explorer and the step-by-step notebooks as a researcher meets them: JupyterLab in Chromium.

The explorer tests share one page and run in order (render, bad value, two runs, stop, switch);
runs are kept small (10 images per class, 1 epoch). Screenshots: tests/_out/screenshots/."""

from __future__ import annotations

import pytest
from dwa_core import approaches, data
from dwa_core.config import TrainConfig
from dwa_core.fields import docs
from dwa_core.widgets import availability
from browser_helpers import error_outputs, images, open_notebook, run_all, screenshot, screenshot_images

EX = ".dwa-explorer"
STATUS = f"{EX} .dwa-status"


@pytest.fixture(scope="module")
def explorer(browser, lab):
    page = open_notebook(browser, lab, "11_explorer", height=2400)  # the whole explorer in view
    run_all(page, timeout_s=300)
    page.wait_for_selector(EX, state="visible")
    yield page
    page.close()


def tab(page, name: str) -> None:
    page.locator(f"{EX} .lm-TabBar-tab", has_text=name).first.click()


def field(page, label: str):
    """The input of the explorer's control labelled `label` (visible tab or top row)."""
    name = page.locator(f"label > span:text-is('{label}')")
    box = page.locator(f"{EX} .widget-inline-hbox:visible", has=name)
    return box.locator("input, select").first


def title(page, label: str) -> str | None:
    """The hover text of the control labelled `label` in the visible tab (its label's title)."""
    span = page.locator(f"{EX} .widget-inline-hbox:visible label span[title]", has_text=label)
    return span.first.get_attribute("title") if span.count() else None


def set_value(page, section: str, label: str, value) -> None:
    tab(page, section)
    inp = field(page, label)
    inp.fill(str(value))
    inp.press("Enter")
    inp.blur()


def click(page, text: str) -> None:
    page.locator(f"{EX} button", has_text=text).first.click()


def status(page) -> str:
    return page.locator(STATUS).first.inner_text()


def wait_status(page, text: str, timeout_s: float = 600, previous: str | None = None) -> str:
    """Wait until the status line contains `text` (and is no longer `previous`)."""
    page.wait_for_function("([sel, text, previous]) => { const s = document.querySelector(sel);"
                           " return s && s.textContent.includes(text) && s.textContent !== previous; }",
                           arg=[STATUS, text, previous], timeout=timeout_s * 1000, polling=250)
    return status(page)


def run(page, until: str, timeout_s: float = 600) -> str:
    """Click Run; the status line once it contains `until` (a new status, not the previous one)."""
    before = page.evaluate("(sel) => document.querySelector(sel).textContent", STATUS)
    click(page, "Run")
    return wait_status(page, until, timeout_s, previous=before)


def small(page) -> None:
    set_value(page, "benchmark", "per_class", 10)
    set_value(page, "train", "epochs", 1)


def test_explorer_renders_controls(explorer):
    page = explorer
    assert error_outputs(page) == []
    for name in ("benchmark", "train", "network", "approach"):
        assert page.locator(f"{EX} .lm-TabBar-tab", has_text=name).count() == 1
    tab(page, "approach")
    for label in ("c", "s_max", "thres_cosh", "thres_emb"):  # HAT's Params
        assert field(page, label).count() == 1, label
    tab(page, "train")
    for label in ("epochs", "lr", "batch_size", "lr_schedule"):
        assert field(page, label).count() == 1, label
    assert page.locator(f"{EX} button", has_text="Run").is_enabled()
    assert "ready" in status(page)


def test_controls_show_their_documentation_on_hover(explorer):
    page = explorer
    expected = {"benchmark": ("per_class", docs(data.get_spec("split-digits").Params)),
                "train": ("clip_grad", docs(TrainConfig)),
                "approach": ("s_max", docs(approaches.get("hat").Params))}
    for section, (label, declared) in expected.items():
        tab(page, section)
        assert title(page, label) == declared[label], (section, label)
    tab(page, "train")
    assert title(page, "lr_schedule") == docs(TrainConfig)["lr_schedule"]  # a dropdown
    tab(page, "network")
    assert title(page, "hidden")  # every network option has a hover text
    options = page.locator(f"{EX} .widget-dropdown", has=page.locator("label > span:text-is('benchmark')")) \
        .locator("option").all_inner_texts()
    options = [o.replace("\xa0", " ") for o in options]  # ipywidgets shows spaces as no-break spaces
    for name in ("mixture", "split-digits"):
        label = f"{name} (data missing)" if availability.missing(name) else name
        assert label in options, options


def test_bad_value_shows_its_error(explorer):
    page = explorer
    set_value(page, "train", "lr", -1)
    text = run(page, "error", 120)
    assert "train.lr: must be a number > 0, got -1.0" in text and "\n" not in text.strip()
    set_value(page, "train", "lr", 0.1)


def test_run_trains_to_done_and_images_load(explorer):
    page = explorer
    small(page)
    text = run(page, "done", 600)
    assert "final average accuracy" in text
    page.wait_for_function(f"() => document.querySelectorAll('{EX} img').length >= 3")
    imgs = images(page, EX)
    assert len(imgs) >= 3 and all(complete and width > 0 for complete, width, _ in imgs), imgs


def test_two_runs_in_the_comparison_table(explorer):
    page = explorer
    set_value(page, "train", "lr", 0.05)
    run(page, "done", 600)
    rows = page.locator(f"{EX} .dwa-runs tbody tr")
    assert rows.count() == 2
    assert "lr 0.05" in rows.nth(1).inner_text() and "train.lr" not in rows.nth(1).inner_text()
    page.wait_for_function(f"() => Array.from(document.querySelectorAll('{EX} img'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    screenshot(page, "explorer_two_runs", scroll_to=EX)


def test_hat_mask_panel_and_command_line(explorer):
    page = explorer
    panel = page.locator(f"{EX} .dwa-panel img")
    assert panel.count() == 1  # HAT's unit masks after the last task
    page.wait_for_function(f"() => Array.from(document.querySelectorAll('{EX} .dwa-panel img'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    assert "epoch 1/1" in page.locator(f"{EX} .dwa-eta").first.inner_text()
    command = page.locator(f"{EX} .dwa-cli textarea").first.input_value()
    assert command.startswith("python -m dwa_core run --benchmark split-digits --approach hat")
    assert "--set train.epochs=1" in command and "--benchmark-param per_class=10" in command
    screenshot(page, "explorer_hat_masks", scroll_to=f"{EX} .dwa-panel")


def test_stop_stops(explorer):
    page = explorer
    set_value(page, "train", "epochs", 300)
    run(page, "task 2", 600)  # task 1 finished and kept
    assert not page.locator(f"{EX} button", has_text="Run").is_enabled()  # disabled while training
    click(page, "Stop")
    text = wait_status(page, "stopped", 120)
    assert "tasks finished and kept" in text
    assert page.locator(f"{EX} button", has_text="Run").is_enabled()
    assert page.locator(f"{EX} .dwa-runs tbody tr").count() == 2  # a stopped run is not added
    screenshot(page, "explorer_stopped", scroll_to=EX)


def test_switching_approach_rebuilds_controls(explorer):
    page = explorer
    page.locator(f"{EX} .widget-dropdown", has=page.locator("label > span:text-is('approach')")) \
        .locator("select").select_option("dwa")
    wait_status(page, "ready: dwa", 60)
    tab(page, "approach")
    assert field(page, "lamb_triplet").count() == 1 and field(page, "c").count() == 0
    triplet = page.locator("label > span:text-is('triplet_form')")
    assert page.locator(f"{EX} .widget-dropdown:visible", has=triplet).count() == 1  # fixed values
    tab(page, "approach")
    assert title(page, "curriculum") == docs(approaches.get("dwa").Params)["curriculum"]
    screenshot(page, "explorer_dwa_controls", scroll_to=EX)


def test_dwa_run_shows_masks_and_embedding(explorer):
    page = explorer
    small(page)
    run(page, "done", 600)
    page.wait_for_function(f"() => document.querySelectorAll('{EX} .dwa-panel img').length == 2"
                           f" && Array.from(document.querySelectorAll('{EX} .dwa-panel img'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    rows = page.locator(f"{EX} .dwa-runs tbody tr")
    assert "approach dwa" in rows.nth(rows.count() - 1).inner_text()
    assert "use_stem" not in rows.nth(rows.count() - 1).inner_text()
    screenshot(page, "explorer_dwa_masks", scroll_to=f"{EX} .dwa-panel")
    screenshot(page, "explorer_dwa_overlay", scroll_to=f"{EX} .dwa-runs")


@pytest.mark.parametrize("name, min_images", [("03_hat_step_by_step", 7), ("05_dwa_step_by_step", 5),
                                              ("07_paper_fig7_masks_pca", 6)])
def test_notebook_runs_with_every_image_loaded(browser, lab, name, min_images):
    page = open_notebook(browser, lab, name)
    try:
        run_all(page, timeout_s=1200)
        assert error_outputs(page) == []
        page.wait_for_function("() => Array.from(document.querySelectorAll("
                               "'.jp-NotebookPanel:not(.lm-mod-hidden) img')).every(i => i.complete)")
        imgs = images(page)
        assert len(imgs) >= min_images and all(width > 0 for _, width, _ in imgs), imgs
        screenshot(page, name)
        screenshot_images(page, name)
    finally:
        page.close()
