"""Real-browser helpers: find Chromium, run a throw-away JupyterLab server, drive its notebook UI with Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import psutil
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from deepfake_lib.training.launch import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def find_chromium() -> str | None:
    """The Chromium binary to drive: ``$CHROMIUM_PATH``, else ``chromium`` on PATH, else Debian's path; or None."""
    env = os.environ.get("CHROMIUM_PATH")
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    return next((p for p in CHROMIUM_CANDIDATES if Path(p).is_file() and os.access(p, os.X_OK)), None)


def write_parameterized_notebook(source: Path, dest: Path, parameters: dict[str, Any]) -> Path:
    """Copy ``source`` to ``dest`` with an ``injected-parameters`` cell after its ``parameters`` cell, as papermill
    does; outputs stay empty, so the notebook opens as a user would open it."""
    nb = parameterize_notebook(load_notebook_node(str(source)), parameters, kernel_name="python3", language="python")
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:  # papermill's bookkeeping, which a notebook opened by hand does not carry
        cell.metadata.pop("papermill", None)
        if not cell.metadata.get("tags", True):
            del cell.metadata["tags"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


# JupyterLab user settings that keep a test run quiet and offline: no news or update check pop-ups.
QUIET_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


@dataclass
class JupyterLab:
    """A JupyterLab server started by :func:`start_jupyter_lab`; ``stop()`` ends it and all its kernels."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path
    base_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """``path`` on this server, with the token as a query parameter."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's combined stdout/stderr."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def get_json(self, path: str, timeout: float = 5.0) -> Any:
        """GET an API path of this server and decode its JSON answer."""
        with urllib.request.urlopen(self.url(path), timeout=timeout) as resp:
            return json.loads(resp.read())

    def wait_for_connected_kernel(self, timeout: float) -> dict[str, Any]:
        """Wait until a kernel of this server is idle with a client (a browser tab) connected to it; returns
        its ``/api/kernels`` entry. Raises RuntimeError with the server log's tail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        kernels: Any = []
        while time.monotonic() < deadline:
            try:
                kernels = self.get_json("api/kernels")
            except urllib.error.HTTPError as exc:  # jupyter_server answers 500 while a kernel is still starting
                if exc.code < 500:
                    raise
                kernels = f"HTTP {exc.code} from /api/kernels"
                time.sleep(0.25)
                continue
            ready = [k for k in kernels if k.get("execution_state") == "idle" and k.get("connections", 0) > 0]
            if ready:
                return ready[0]
            time.sleep(0.25)
        raise RuntimeError(f"no idle, connected kernel after {timeout:.0f} s: {kernels}\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to shut down (kernels included); then terminate, and finally kill, what is left of its
        process group and every process it started (kernels run in process groups of their own)."""
        try:
            procs = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        if self.process.poll() is None:
            try:
                req = urllib.request.Request(self.url("api/shutdown"), method="POST")
                urllib.request.urlopen(req, timeout=3).close()
            except (OSError, urllib.error.URLError):
                pass
        _, alive = psutil.wait_procs(procs, timeout=timeout / 2)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not alive:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            for p in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.send_signal(sig)
            _, alive = psutil.wait_procs(alive, timeout=timeout / 2)
        self.process.wait(timeout=timeout)


def start_jupyter_lab(root_dir: Path, work_dir: Path, timeout: float = 60.0) -> JupyterLab:
    """Start ``jupyter lab`` from this interpreter's environment on a free loopback port with a random token, serving
    ``root_dir``; settings, workspaces and runtime files live under ``work_dir``. Returns once ``/api/status``
    answers; raises RuntimeError with the server log's tail if it does not within ``timeout`` seconds."""
    work_dir.mkdir(parents=True, exist_ok=True)
    settings = work_dir / "settings"
    for name, value in QUIET_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={work_dir / 'workspaces'}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.extension_manager=readonly",  # no PyPI look-ups
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(work_dir / "runtime"), "PYTHONUNBUFFERED": "1"}
    log = work_dir / "jupyter.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=root_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    lab = JupyterLab(proc, port, token, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {proc.returncode} before answering:\n{lab.log_tail()}")
        try:
            lab.get_json("api/status", timeout=2)
            return lab
        except (OSError, urllib.error.URLError, json.JSONDecodeError):
            pass
        if time.monotonic() > deadline:
            lab.stop()
            raise RuntimeError(f"jupyter lab did not answer /api/status within {timeout:.0f} s:\n{lab.log_tail()}")
        time.sleep(0.2)


# ---------------------------------------------------------------------- JupyterLab UI (Playwright, sync API)
def wait_for_idle_kernel(page: Page, timeout_ms: float) -> None:
    """Wait until the notebook toolbar's kernel indicator says idle."""
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=timeout_ms)


def run_all_cells(page: Page, lab: JupyterLab, timeout_ms: float) -> None:
    """Wait for the open notebook's kernel to be started, connected and idle, then click Run > Run All Cells in
    the menu bar. (Run All before the kernel is connected runs nothing, and the toolbar's indicator already
    says idle while the kernel is still starting.)"""
    lab.wait_for_connected_kernel(timeout_ms / 1000)
    wait_for_idle_kernel(page, timeout_ms)
    page.locator("#jp-MainMenu").get_by_role("menuitem", name="Run", exact=True).click()
    page.locator(".lm-Menu li[data-command='runmenu:run-all']").click()


def image_loaded(img: Locator) -> bool:
    """Whether the browser decoded the ``<img>``'s current source into a non-empty picture."""
    return bool(img.evaluate("e => e.complete && e.naturalWidth > 0"))


def drag_slider(page: Page, slider: Locator, end: str) -> None:
    """Drag an ipywidgets slider's handle with the mouse past the ``"left"`` or ``"right"`` end of its track."""
    handle, track = slider.locator(".noUi-handle"), slider.locator(".noUi-target")
    handle.scroll_into_view_if_needed()
    hb, tb = handle.bounding_box(), track.bounding_box()
    assert hb and tb, "the slider is laid out"
    y = hb["y"] + hb["height"] / 2
    page.mouse.move(hb["x"] + hb["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(tb["x"] - 20 if end == "left" else tb["x"] + tb["width"] + 20, y, steps=8)
    page.mouse.up()
