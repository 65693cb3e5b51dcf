"""Build the shipped multi-label dataset `fastai_multilabel/assets/debtags.csv.gz` from Debian's package index.

Reads apt's lz4-compressed `Packages` index (decompressed with `apt-helper cat-file`, or the `lz4` package), keeps the packages
that carry debtags, reduces each to its name, one-line description, section, dependency names and tags, keeps the `--n-tags`
most frequent tags (of every facet), drops packages left
without a kept tag, deduplicates identical descriptions (first package name in sorted order wins) and assigns a fixed
train/valid/test split from a hash of the package name (80/10/10). Also writes `debtags.json` with the provenance.

Usage: python scripts/build_debtags.py [--packages FILE] [--n-tags 50] [--out fastai_multilabel/assets]
"""
import argparse, collections, datetime, glob, gzip, io, json, re, subprocess, zlib
from pathlib import Path
import pandas as pd

LISTS = '/var/lib/apt/lists'

def main_index():
    "apt's largest amd64 Packages index: the main archive (security and updates indexes are small and carry no tags)."
    found = glob.glob(f'{LISTS}/*_main_binary-amd64_Packages*')
    return max(found, key=lambda f: Path(f).stat().st_size) if found else None

def read_index(path):
    "Text of a Packages index, lz4-compressed or not."
    path = str(path)
    if not path.endswith('.lz4'): return Path(path).read_text(errors='replace')
    try: return subprocess.run(['/usr/lib/apt/apt-helper', 'cat-file', path], capture_output=True, check=True).stdout.decode(errors='replace')
    except (OSError, subprocess.CalledProcessError):
        import lz4.frame
        return lz4.frame.decompress(Path(path).read_bytes()).decode(errors='replace')

def stanzas(text):
    "Each package of the index as a dict of its fields (continuation lines joined)."
    for block in text.split('\n\n'):
        fields, key = {}, None
        for line in block.splitlines():
            if line[:1] in (' ', '\t') and key: fields[key] += ' ' + line.strip()
            elif ':' in line:
                key, val = line.split(':', 1); fields[key] = val.strip()
        if 'Package' in fields: yield fields

def dep_names(depends):
    "Package names of a Depends field, without versions, architectures or alternatives' operators."
    return sorted({re.split(r'[\s(:\[]', alt.strip())[0] for part in depends.split(',') for alt in part.split('|') if alt.strip()})

def split_of(name):
    "A fixed split from a hash of the package name: 80% train, 10% valid, 10% test."
    h = zlib.crc32(name.encode()) % 10
    return 'test' if h == 0 else 'valid' if h == 1 else 'train'

def build(text, n_tags=50):
    rows = []
    for f in stanzas(text):
        if 'Tag' not in f: continue
        tags = [t.strip() for t in f['Tag'].split(',') if t.strip()]
        rows.append(dict(package=f['Package'], description=f.get('Description', ''), section=f.get('Section', ''),
                         depends=' '.join(dep_names(f.get('Depends', ''))), tags=tags))
    df = pd.DataFrame(rows).sort_values('package').drop_duplicates('package')
    counts = collections.Counter(t for ts in df.tags for t in ts)
    keep = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n_tags]]
    keep_set = set(keep)
    df['tags'] = df.tags.map(lambda ts: ' '.join(t for t in ts if t in keep_set))
    n_all = len(df)
    df = df[df.tags != ''].drop_duplicates('description')
    df['split'] = df.package.map(split_of)
    return df.reset_index(drop=True), keep, n_all, counts

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--packages', help="Packages index (default: apt's main amd64 index)")
    ap.add_argument('--n-tags', type=int, default=50)
    ap.add_argument('--out', default=str(Path(__file__).resolve().parents[1]/'fastai_multilabel'/'assets'))
    a = ap.parse_args()
    path = a.packages or main_index()
    if path is None: raise SystemExit(f'No Packages index in {LISTS}: run apt-get update, or pass --packages FILE')
    release, rel = {}, Path(re.sub(r'_main_binary-amd64_Packages.*$', '_InRelease', str(path)))  # the index's own release file
    for line in (rel.read_text(errors='replace').splitlines()[:12] if rel.exists() else []):
        k, _, v = line.partition(': ')
        if k in ('Origin', 'Suite', 'Codename', 'Version', 'Date'): release[k] = v
    df, keep, n_all, _ = build(read_index(path), a.n_tags)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode='wb', mtime=0) as gz: gz.write(df.to_csv(index=False).encode())  # mtime 0: reproducible bytes
    (out/'debtags.csv.gz').write_bytes(buf.getvalue())
    meta = dict(source=f'Debian {release.get("Version", "?")} ({release.get("Codename", "?")}) main amd64 Packages index',
                release=release, index_file=Path(path).name, built=datetime.date.today().isoformat(), n_packages_tagged=n_all,
                n_rows=len(df), split_sizes=df.split.value_counts().to_dict(), tags=keep,
                licence=("Package names, one-line descriptions, sections, dependencies and debtags from Debian's archive "
                         "index, which Debian distributes freely; descriptions are written by the package maintainers. "
                         "No package contents are included."))
    (out/'debtags.json').write_text(json.dumps(meta, indent=1) + '\n')
    print(f'{len(df)} packages ({n_all} tagged before filtering), {len(keep)} tags, {(out/"debtags.csv.gz").stat().st_size/2**20:.2f} MB -> {out}')

if __name__ == '__main__': main()
