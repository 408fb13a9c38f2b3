"""Notebook 05's inspector in a real browser: JupyterLab + headless Chromium run the notebook and use the widgets."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from tests.browser import (
    JupyterLab,
    drag_slider,
    find_chromium,
    image_loaded,
    run_all_cells,
    start_jupyter_lab,
    wait_for_idle_kernel,
    write_parameterized_notebook,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_gradcam.ipynb"
RUN_TIMEOUT_MS = 180_000  # Run All on a busy 2-core machine: kernel start, torch import, Grad-CAM of 4 images
UI_TIMEOUT_MS = 20_000  # one widget round trip (browser -> kernel -> browser)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# CI sets this after installing Chromium: there a missing browser is a failure, not a skip
REQUIRED = os.environ.get("DEEPFAKE_REQUIRE_BROWSER") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"DEEPFAKE_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    from playwright import sync_api
except ModuleNotFoundError:
    _unavailable("the playwright package is not installed (pip install playwright)")
CHROMIUM = find_chromium()
if CHROMIUM is None:
    _unavailable(
        f"CHROMIUM_PATH={os.environ['CHROMIUM_PATH']!r} is not an executable file"
        if os.environ.get("CHROMIUM_PATH")
        else "no Chromium: none on PATH, no /usr/bin/chromium (Debian: apt-get install chromium; or set CHROMIUM_PATH)"
    )


@pytest.fixture
def lab_root(tiny_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A folder holding notebook 05, parameterized for a tiny run folder (the untrained tiny checkpoint)."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, run_dir / "checkpoints" / "best_model.pth")
    parameters = {"DATA_DIR": str(tiny_data), "RUN_DIR": str(run_dir), "N_PER_GROUP": 2, "DEVICE": "cpu"}
    write_parameterized_notebook(ROOT / "notebooks" / NOTEBOOK, tmp_path / "lab" / NOTEBOOK, parameters)
    return tmp_path / "lab"


@pytest.fixture
def lab(lab_root: Path, tmp_path: Path) -> Iterator[JupyterLab]:
    """A JupyterLab server serving ``lab_root``; stopped (kernels included) whatever the test does."""
    server = start_jupyter_lab(lab_root, tmp_path / "jupyter")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser_errors() -> list[str]:
    """Console errors and uncaught exceptions of the page, in order (filled by the ``page`` fixture)."""
    return []


@pytest.fixture
def page(lab: JupyterLab, browser_errors: list[str], tmp_path: Path) -> Iterator[Page]:
    """A headless Chromium page on an otherwise idle browser; its console errors and uncaught exceptions go to
    ``browser_errors``, and a last screenshot to ``tmp_path/teardown.png`` before the browser closes."""
    playwright = sync_api.sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.set_default_timeout(UI_TIMEOUT_MS)
            tab.on("console", lambda m: browser_errors.append(f"console: {m.text}") if m.type == "error" else None)
            tab.on("pageerror", lambda e: browser_errors.append(f"uncaught: {e}"))
            yield tab
            with contextlib.suppress(sync_api.Error):
                tab.screenshot(path=tmp_path / "teardown.png")
        finally:
            browser.close()
    finally:
        playwright.stop()


def wait_until_executed(page: Page, lab: JupyterLab) -> Locator:
    """Wait for the inspector's output to be attached and the kernel idle with every code cell run; returns it."""
    inspector = page.locator(".jp-OutputArea-output .jupyter-widgets.widget-vbox").first
    try:
        inspector.wait_for(state="attached", timeout=RUN_TIMEOUT_MS)
        wait_for_idle_kernel(page, RUN_TIMEOUT_MS)
    except sync_api.TimeoutError as exc:
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        raise AssertionError(
            f"the inspector did not appear; outputs: {outputs}\nserver log:\n{lab.log_tail()}"
        ) from exc
    # textContent, not innerText: cells scrolled out of view are not rendered (CSS content-visibility)
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()
    assert prompts and all(p.strip()[1:-2].isdigit() for p in prompts), f"every code cell ran: {prompts}"
    return inspector


def test_inspector_reacts_to_slider_image_choice_and_upload_in_a_real_browser(
    page: Page, lab: JupyterLab, browser_errors: list[str], tmp_path: Path
) -> None:
    expect = sync_api.expect
    started = time.monotonic()
    page.goto(lab.url(f"lab/tree/{NOTEBOOK}"))
    run_all_cells(page, lab, RUN_TIMEOUT_MS)
    inspector = wait_until_executed(page, lab)
    inspector.scroll_into_view_if_needed()

    # rendered as live widgets, not as a placeholder or an error
    slider = inspector.locator(".widget-slider")
    expect(slider).to_be_visible()
    expect(page.get_by_text("Error displaying widget")).to_have_count(0)
    expect(page.get_by_text("Loading widget...")).to_have_count(0)
    expect(page.locator(".jp-OutputArea-output", has_text="Traceback")).to_have_count(0)
    info = inspector.locator(".widget-html-content", has_text="decision:")
    image = inspector.locator("img.widget-image").first
    heatmap = inspector.locator("img.widget-image").nth(1)
    expect(info).to_contain_text("threshold = 0.50")
    assert image_loaded(image) and image_loaded(heatmap), "image and heatmap are decodable pictures"

    # the threshold slider moves the decision (a sigmoid probability lies strictly between 0 and 1)
    drag_slider(page, slider, "right")
    expect(slider.locator(".widget-readout")).to_have_text("1.00")
    expect(info).to_contain_text("threshold = 1.00")
    expect(info).to_contain_text("decision: REAL")
    drag_slider(page, slider, "left")
    expect(slider.locator(".widget-readout")).to_have_text("0.00")
    expect(info).to_contain_text("threshold = 0.00")
    expect(info).to_contain_text("decision: FAKE")

    # another image from the dropdown replaces the picture and the text
    select = inspector.locator(".widget-dropdown select")
    options = select.locator("option").all_inner_texts()
    assert len(options) >= 2, f"the inspector offers several images: {options}"
    before_src, before_png = image.get_attribute("src"), image.screenshot()
    before_name = info.locator("b").first.inner_text()
    select.select_option(index=len(options) - 1)
    expect(image).not_to_have_attribute("src", before_src or "")
    new_name = options[-1].replace("\xa0", " ").split(" · ")[1].split(" (")[0]
    assert new_name != before_name
    expect(info.locator("b").first).to_have_text(new_name)
    expect(info).to_contain_text("threshold = 0.00")  # the slider's threshold carries over
    page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=image.element_handle())
    assert image.screenshot() != before_png, "the shown picture changed"

    # an uploaded image (the browser's file chooser -> ipywidgets 8 FileUpload) is predicted and shown
    upload = tmp_path / "my_upload.png"
    Image.linear_gradient("L").resize((48, 48)).convert("RGB").save(upload)
    before_src = image.get_attribute("src")
    with page.expect_file_chooser() as chooser:
        inspector.locator(".widget-upload").click()
    chooser.value.set_files(upload)
    expect(info.locator("b").first).to_have_text(upload.name)
    expect(info).to_contain_text("group: uploaded")
    expect(inspector.locator(".widget-toggle-button", has_text="uploaded")).to_be_visible()
    expect(image).not_to_have_attribute("src", before_src or "")
    page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=image.element_handle())
    expect(inspector.locator(".widget-html-content", has_text="error:")).to_have_count(0)

    shot = tmp_path / "inspector.png"
    inspector.screenshot(path=shot)
    assert not browser_errors, "the page logged errors:\n" + "\n".join(browser_errors)
    print(f"inspector screenshot: {shot} ({time.monotonic() - started:.1f} s in the browser)")
