"""Fixtures of the browser tests: JupyterLab on 127.0.0.1 (a free port, a token, settings and
runtime files in a temporary folder) and a Chromium page driven by Playwright.

Chromium is Debian's (`apt-get install chromium`, done by scripts/setup.sh as root); Playwright's
own browser download is never used. Without either, the tests are skipped with the reason."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DWA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOKS = ("03_hat_step_by_step", "05_dwa_step_by_step", "07_paper_fig7_masks_pca", "11_explorer")
# JupyterLab settings of the test server: no autosave (nothing is written back), no news pop-up.
SETTINGS = {"@jupyterlab/docmanager-extension/plugin": {"autosave": False},
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A running JupyterLab: {"url", "token", "root"}; its notebooks/ holds copies of the notebooks
    under test (so no output is ever saved into the checkout). Stopped after the session."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    (root / "notebooks").mkdir(parents=True)
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", root / "notebooks")
    settings = tmp / "settings"
    for key, value in SETTINGS.items():
        path = settings / (key + ".jupyterlab-settings")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTER_DATA_DIR=str(tmp / "data"),
               PYTHONPATH=str(ROOT))
    log = open(tmp / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
         f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--LabApp.expose_app_in_browser=True"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"JupyterLab did not start; see {tmp / 'jupyterlab.log'}")
        time.sleep(0.5)
    yield {"url": url, "token": token, "root": root}
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright (headless, --no-sandbox: the tests run as root)."""
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (scripts/setup.sh installs Debian's chromium as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright is not installed")
    pw = sync_api.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
    yield browser
    browser.close()
    pw.stop()
