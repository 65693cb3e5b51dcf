"""The docs site: served on localhost and opened in headless Chromium. Every internal link leads to a page, the API pages
show `show_doc` parameter tables and no exported source, a tutorial's plots render, and the build hides the cells nbdev hides."""
import functools, http.server, importlib.util, shutil, subprocess, sys, threading
from pathlib import Path
from urllib.parse import urlparse
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE, SHOTS = ROOT/'_site', ROOT/'_screenshots'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')

def _build_docs():
    spec = importlib.util.spec_from_file_location('build_docs', ROOT/'scripts'/'build_docs.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

class _Handler(http.server.SimpleHTTPRequestHandler):
    "Serves `_site/`; a folder without an index.html is not a page (404, not a listing)"
    def list_directory(self, path): self.send_error(404, 'No index.html here')
    def log_message(self, *args): pass

@pytest.fixture(scope='module')
def server():
    if not (SITE/'index.html').exists():  # `make test` builds it first (`make docs`); build it when run on its own
        subprocess.run([sys.executable, 'scripts/build_docs.py'], cwd=ROOT, check=True)
        subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '-q'], cwd=ROOT, check=True)
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Handler, directory=str(SITE)))
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
        pg = browser.new_page(viewport={'width': 1280, 'height': 900})
        # Only the local server: the theme's web fonts and MathJax's CDN are refused, not fetched
        pg.route('**/*', lambda route: route.continue_() if urlparse(route.request.url).hostname == '127.0.0.1' else route.abort())
        yield pg
        browser.close()

def test_internal_links(server, page):
    "From the home page, visit every page reachable through internal links: each must exist, and every page be reached"
    host, todo, found_on, visited = urlparse(server).netloc, [f'{server}/'], {f'{server}/': ['(start)']}, set()
    dead = {}
    while todo:
        url = todo.pop(0)
        if url in visited: continue
        visited.add(url)
        resp = page.request.get(url)
        if not resp.ok:
            dead[url] = f'HTTP {resp.status}'
            continue
        if 'text/html' not in resp.headers.get('content-type', ''): continue  # a notebook or an image: it exists
        page.goto(url, wait_until='load')
        for href,target in page.eval_on_selector_all('a[href]', 'els => els.map(e => [e.getAttribute("href"), e.href])'):
            u = urlparse(target)
            if href.startswith('#') or u.scheme not in ('http', 'https') or u.netloc != host: continue
            link = u._replace(fragment='').geturl().removesuffix('index.html')
            found_on.setdefault(link, [])
            if url not in found_on[link]: found_on[link].append(url)
            if link not in visited: todo.append(link)
    assert not dead, 'Dead links:\n' + '\n'.join(f'{u} ({why}), on {", ".join(found_on[u])}' for u,why in dead.items())
    pages = {f'{server}/' + ('' if (d := p.parent.relative_to(SITE).as_posix()) == '.' else d + '/') for p in SITE.rglob('index.html')}
    assert len(pages) >= 10 and not pages - visited, f'Pages no link leads to (add them to the nav): {sorted(pages - visited)}'

def test_metrics_api_page(server, page):
    page.goto(f'{server}/03_metrics/', wait_until='load')
    for name in ['FScore', 'TopKAccuracy', 'PerLabelRecall', 'default_metrics']:  # one show_doc section each
        assert page.locator(f'h3[id="{name.lower()}"]').inner_text().startswith(name)
    table = page.locator('.jp-RenderedMarkdown:has(h3[id="fscore"]) table').first  # FScore's parameters, from its docments
    table.wait_for()
    rows = table.locator('tbody tr')
    params = [rows.nth(i).locator('td').first.inner_text() for i in range(rows.count())]
    assert {'beta', 'thresh', 'average'} <= set(params)
    assert 'Weight of recall against precision' in table.inner_text()
    text = page.locator('article').inner_text()
    assert 'class FScore(' not in text and '#|' not in text  # exported source and directives stay hidden
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

def test_processing_hides_cells(tmp_path):
    "The build's steps on a small notebook: nbdev directives hide what they hide, after every cell that must run has run"
    import nbformat
    from mkdocs_jupyter.convert import nb2html
    bd = _build_docs()
    C,M = nbformat.v4.new_code_cell,nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook(metadata={'kernelspec': {'name': 'python3', 'display_name': 'python3', 'language': 'python'}})
    nb.cells = [M('# Demo'), C('#| default_exp demo'), C('#| hide\nSETUP = 41\nprint("hidden-output")'),
                C('#| export\ndef add_one(x:int, # The number to add to\n           ): "Add one to `x`"; return x + 1  # exported-source'),
                C('print("sum", add_one(SETUP))'), C('#| echo: false\nprint("only-output")  # echo-source'),
                C('#| output: false\nprint("no-output")  # output-source'), C('#| eval: false\nraise RuntimeError("not-run")'),
                M('## A hidden heading -')]
    nbformat.write(nb, tmp_path/'nb.ipynb')
    bd.process_nb(tmp_path/'nb.ipynb', tmp_path/'proc.ipynb')
    html = bd.cut_cells(nb2html(str(tmp_path/'proc.ipynb'), execute=True, kernel_name='python3', allow_errors=False,
                                remove_tag_config={'remove_input_tags': ['remove_input']}))
    for shown in ['sum 42', 'add_one', 'The number to add to', 'only-output', 'output-source', 'not-run']: assert shown in html, shown
    for hidden in ['hidden-output', 'SETUP = 41', 'exported-source', 'default_exp', 'echo-source', 'show_doc', '>no-output',
                   'A hidden heading', '#|']: assert hidden not in html, hidden
