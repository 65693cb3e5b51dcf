"""The docs build's nbdev step, done without Quarto: `python scripts/build_docs.py` processes `nbs/` into `_proc/`, which
`mkdocs build` (mkdocs-jupyter, executing every notebook) renders into `_site/`; `make docs` runs both.

nbdev 3's own `nbdev_proc_nbs` installs Quarto first and writes Quarto-only markup (`#| output: asis`, fenced divs), and
its `exec_show_docs` runs every notebook's exported code a second time, so this script reuses only nbdev's notebook
processor and its `add_show_docs` step (a `show_doc(name)` cell after each `#| export` cell, for each public function or
class it defines), and tags cells instead of deleting them: mkdocs-jupyter still executes every cell, so set-up cells that
later cells need still run. The tags:

- `remove_cell`: `#| hide`, `#| include: false`, `#| export`, `#| exporti`, `#| default_exp` and directive-only cells;
  `on_page_content` below cuts them out of the rendered page after execution (nbconvert's own tag removal runs before
  execution, so it would skip them).
- `remove_input`: `show_doc` cells and `#| echo: false`; nbconvert drops the input (`remove_tag_config` in mkdocs.yml).
- `remove_output`: `#| output: false`; cut out by `on_page_content`.
- `skip-execution`: `#| eval: false` (nbclient does not run it).

Directive lines are stripped from every cell. `show_doc` renders the signature, the docstring and a table of the
parameters built from their docments (`arg:type=default, # comment`), as nbdev 2 did.

Links between pages: in a notebook's markdown, link to the other notebook's `.ipynb` file, relative to the notebook
(`[metrics](03_metrics.ipynb)`, from a tutorial `[data](../06_data.ipynb)`, to a heading `03_metrics.ipynb#f-beta`), as
nbdev and Quarto expect; the link works in Jupyter and on GitHub too. `on_page_content` rewrites it to the page's URL.

This file is also mkdocs's hook module (`hooks:` in mkdocs.yml): it fills an empty `API` section of the nav with every
numbered notebook, cuts the tagged cells, rewrites the links, and puts the original notebooks (not the processed ones)
beside their pages."""
import logging, posixpath, re, shutil, sys
from itertools import groupby
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, PROC = ROOT/'nbs', ROOT/'_proc'
log = logging.getLogger('mkdocs.hooks.build_docs')

# ---------------------------------------------------------------------------------------------------------------------
# Processing nbs/ into _proc/

_HIDE_DIRS = {'hide', 'export', 'exporti', 'default_exp'}

# The first (hidden) cell of a notebook with `show_doc` cells: load this file and make nbdev's `show_doc` use the table.
_SETUP = f'''import importlib.util as _iu
_spec = _iu.spec_from_file_location('_build_docs', {str(Path(__file__).resolve())!r})
_bd = _iu.module_from_spec(_spec); _spec.loader.exec_module(_bd); _bd.use_table_show_doc()
from nbdev.showdoc import show_doc
del _iu, _spec, _bd'''

def _tags(cell):
    "Tags that hide (parts of) a code `cell` on the page, from its nbdev directives"
    d,res = cell.directives_,[]
    if d.keys() & _HIDE_DIRS or d.get('include') == 'false' or not cell.source.strip(): res.append('remove_cell')
    elif d.get('echo') == 'false' or getattr(cell, 'has_sd', False): res.append('remove_input')
    if d.get('output') == 'false': res.append('remove_output')
    if d.get('eval') == 'false': res.append('skip-execution')
    return res

def process_nb(src:Path, dst:Path):
    "Write `src` to `dst` with `show_doc` cells added and the cells that the page hides tagged"
    from fastcore.nbio import read_nb, write_nb, mk_cell
    from nbdev.process import NBProcessor
    from nbdev.processors import add_show_docs, rm_header_dash
    nb = read_nb(src)
    NBProcessor(nb=nb, procs=[add_show_docs, rm_header_dash], rm_directives=True).process()
    runs = [list(g) for k,g in groupby(range(len(nb.cells)), lambda i: getattr(nb.cells[i], 'has_sd', False)) if k]
    for r in runs: nb.cells[r[0]:r[-1]+1] = nb.cells[r[-1]:r[0]-1 if r[0] else None:-1]  # in the order of definition
    cells = [c for c in nb.cells if c.cell_type == 'code']
    for i,c in enumerate(cells):
        if getattr(c, 'has_sd', False): c['id'] = f'showdoc-{i}'
        tags = _tags(c)
        c.pop('has_sd', None)
        if tags: c.setdefault('metadata', {})['tags'] = list(dict.fromkeys(c.get('metadata', {}).get('tags', []) + tags))
    if any(re.search(r'^\s*show_doc\(', c.source, re.M) for c in cells):
        nb.cells.insert(0, mk_cell(_SETUP, id='showdoc-setup', metadata={'tags': ['remove_cell']}))
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, dst)

def build(src:Path=NBS, dst:Path=PROC):
    "Process every notebook of `src` into `dst` (emptied first) and copy its other files, as nbdev's `proc_nbs` does"
    if dst.exists(): shutil.rmtree(dst)
    for f in sorted(src.rglob('*')):
        rel = f.relative_to(src)
        if not f.is_file() or any(p.startswith(('.', '_')) for p in rel.parts): continue
        if f.suffix == '.ipynb': process_nb(f, dst/rel)
        else:
            (dst/rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst/rel)
    return dst

# ---------------------------------------------------------------------------------------------------------------------
# show_doc with a parameter table (runs in the notebooks' kernel, from the set-up cell above)

def use_table_show_doc():
    "Make nbdev's `show_doc` render the signature, the docstring and a table of the parameters' docments"
    import inspect
    import nbdev.showdoc
    from fastcore.docments import DocmentTbl, DocmentText

    class TableRenderer(nbdev.showdoc.MarkdownRenderer):
        def _sig(self, maxline=100):
            if not isinstance(self.dm, DocmentText): return str(self.dm)
            ps = [p for p,_ in self.dm.params]
            ret = getattr(self.sig, 'return_annotation', inspect.Signature.empty)
            ret = '' if ret is inspect.Signature.empty else '->' + inspect.formatannotation(ret).removeprefix('typing.')
            one = f"{self.nm}({', '.join(ps)}){ret}"
            return one if len(one) <= maxline or not ps else f"{self.nm}(\n" + ''.join(f'    {p},\n' for p in ps) + f"){ret}"

        def _repr_markdown_(self):
            res = f"---\n\n{'#'*self.title_level} {self.nm}\n\n```python\n{self._sig()}\n```\n"
            if self.docs: res += '\n' + re.sub(r'^(\s*)(.+)', r'\1*\2*', self.docs, count=1) + '\n'
            try: tbl = str(DocmentTbl(self.sym))
            except Exception: tbl = ''
            return res + ('\n' + tbl + '\n' if tbl else '')

    nbdev.showdoc.BasicMarkdownRenderer = TableRenderer  # `show_doc`'s default renderer, looked up at each call

# ---------------------------------------------------------------------------------------------------------------------
# mkdocs hooks

def on_config(config):
    "Fill an empty nav section `API` with every numbered notebook at the top of docs_dir (titled by its first heading)"
    for item in config['nav'] or []:
        if isinstance(item, dict) and item.get('API') == []:
            item['API'] = [f.name for f in sorted(Path(config['docs_dir']).glob('[0-9]*.ipynb'))]
    return config

class _Spans(HTMLParser):
    "Offsets in an nbconvert page of the cells tagged `remove_cell` and of the outputs of the cells tagged `remove_output`"
    def __init__(self, html):
        super().__init__(convert_charrefs=False)
        self.html,self.lines = html,[0] + [m.end() for m in re.finditer('\n', html)]
        self.open,self.spans = [],[]  # per open div: its start offset if it is cut out, 'rm_out' or None
        self.feed(html); self.close()

    def _pos(self): return self.lines[self.getpos()[0]-1] + self.getpos()[1]

    def handle_starttag(self, tag, attrs):
        if tag != 'div': return
        cls = (dict(attrs).get('class') or '').split()
        if 'jp-Cell' in cls and 'celltag_remove_cell' in cls: mark = self._pos()
        elif 'jp-Cell-outputWrapper' in cls and 'rm_out' in self.open: mark = self._pos()
        elif 'jp-Cell' in cls and 'celltag_remove_output' in cls: mark = 'rm_out'
        else: mark = None
        self.open.append(mark)

    def handle_endtag(self, tag):
        if tag != 'div' or not self.open: return
        start = self.open.pop()
        if isinstance(start, int) and not any(isinstance(o, int) for o in self.open):  # not inside a span already cut
            self.spans.append((start, self.html.index('>', self._pos()) + 1))

def cut_cells(html):
    "`html` without the cells tagged `remove_cell` nor the outputs of those tagged `remove_output`"
    for s,e in reversed(_Spans(html).spans): html = html[:s] + html[e:]
    return html

_re_nb_href = re.compile(r'''(<a\s[^>]*?href=)(["'])([^"'#:?]+\.ipynb)(#[^"']*)?\2''')

def fix_links(html, page, files):
    "Point the relative links to `.ipynb` files in `html` of `page` at their pages on the site"
    def _sub(m):
        pre,q,target,frag = m.groups()
        if target.startswith('/'): return m.group(0)
        f = files.get_file_from_path(posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), target)))
        if f is None or not f.is_documentation_page():
            log.warning("Doc file '%s' links to '%s', which is not a notebook of the docs", page.file.src_uri, target)
            return m.group(0)
        return f'{pre}{q}{f.url_relative_to(page.file) or "./"}{frag or ""}{q}'
    return _re_nb_href.sub(_sub, html)

def on_page_content(html, page, config, files):
    if not page.file.src_uri.endswith('.ipynb'): return html
    return fix_links(cut_cells(html), page, files)

def on_post_build(config):
    "mkdocs-jupyter's `include_source` copied the processed notebooks beside their pages: put the originals there"
    site,docs = Path(config['site_dir']),Path(config['docs_dir'])
    if docs.resolve() != PROC: return
    for f in docs.rglob('*.ipynb'):
        rel = f.relative_to(docs)
        dst = site/(rel.parent if rel.stem == 'index' else rel.with_suffix(''))/rel.name
        if dst.exists() and (NBS/rel).exists(): shutil.copy2(NBS/rel, dst)

if __name__ == '__main__':
    print(f'Processed notebooks into {build(*map(Path, sys.argv[1:3]))}')
