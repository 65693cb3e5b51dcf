"The docs site: served on localhost and opened in headless Chromium, the metrics API table and a tutorial's plot render."
import functools, http.server, os, shutil, subprocess, sys, threading
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE, SHOTS = ROOT/'_site', ROOT/'_screenshots'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')

@pytest.fixture(scope='module')
def server():
    if not (SITE/'index.html').exists():  # `make test` builds it first (`make docs`); build it when run on its own
        subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '-q'], cwd=ROOT, check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()

@pytest.fixture(scope='module')
def page():
    from playwright.sync_api import sync_playwright
    assert CHROMIUM, "Chromium is missing: `make test` installs Debian's chromium (apt-get install chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=['--headless', '--no-sandbox', '--disable-gpu',
                                    '--disable-background-networking', '--disable-component-update', '--no-first-run'])
        yield browser.new_page(viewport={'width': 1280, 'height': 900})
        browser.close()

def test_metrics_api_page(server, page):
    page.goto(f'{server}/03_metrics/', wait_until='load')
    table = page.locator('table', has_text='TopKAccuracy').first
    table.wait_for()
    rows = table.locator('tbody tr')
    names = [rows.nth(i).locator('th').first.inner_text() for i in range(rows.count())]
    assert {'FScore', 'TopKAccuracy', 'PerLabelRecall', 'default_metrics'} <= set(names)
    SHOTS.mkdir(exist_ok=True)
    table.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS/'metrics_api.png'))
    assert (SHOTS/'metrics_api.png').stat().st_size > 10_000

def test_tutorial_plot_renders(server, page):
    page.goto(f'{server}/tutorials/04_report/', wait_until='load')
    imgs = page.locator('img')
    assert imgs.count() >= 2
    loaded = page.evaluate("() => Array.from(document.images).filter(i => i.complete && i.naturalWidth > 300).length")
    assert loaded >= 2
    assert page.locator('table', has_text='best_thresh').count() >= 1   # the report DataFrame
    page.locator('img').nth(0).scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS/'tutorial_report.png'), full_page=False)
    assert (SHOTS/'tutorial_report.png').stat().st_size > 10_000
