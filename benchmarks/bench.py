"""`make bench`: the issue's speed targets as one table of ratios, every contender measured in this run.

Runs benchmarks/metrics.py (batches of 64 through fastai's metric protocol, fresh tensors per batch, each contender in its
own process twice, best of --runs epochs) and benchmarks/thresholds.py (--quick: exact per-label search against one sort, binned
search against the one-pass reference) with 1 and 2 torch threads, and prints the machine, versions and the ratios.
"""
import argparse, json, os, platform, subprocess, sys
from pathlib import Path

HERE = Path(__file__).parent
TARGETS = [('set / ref', '<= 1.5'), ('set vs fastai', '>= 10 (100, 1000 labels)'), ('FScore / ref', '<= 1.0'),
           ('FScore vs tm', '>= 5'), ('binned / 1 pass', '<= 2'), ('exact / sort', '<= 1.5')]

def run(args):
    p = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True)
    if p.returncode: sys.exit(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])

def machine():
    import torch, fastai, torchmetrics
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    return (f'{cpu}, {os.cpu_count()} cores; python {platform.python_version()}, torch {torch.__version__}, '
            f'fastai {fastai.__version__}, torchmetrics {torchmetrics.__version__}')

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', default='100000x17,100000x100,20000x1000')
    ap.add_argument('--runs', type=int, default=5)
    a = ap.parse_args()
    print(machine())
    th = run([HERE/'thresholds.py', '--json', '--quick', '--sizes', a.sizes, '--threads', '1,2'])
    rows = []
    for threads in (1, 2):
        m = run([HERE/'metrics.py', '--json', '--sizes', a.sizes, '--threads', threads, '--runs', a.runs])
        for size, r in m.items():
            s = {k: v['seconds'] for k, v in r.items()}
            t = th[f'{size}/{threads}']
            rows.append((size, threads, s['ours_recommended'] / s['reference_one_pass'], s['fastai_recommended'] / s['ours_recommended'],
                         s['ours_FScore'] / s['reference_one_pass'], s['tm_MultilabelFBetaScore'] / s['ours_FScore'],
                         t['binned_1024'] / t['one_pass'], t['exact_per_label'] / t['sort'],
                         s['calls_only'] / s['reference_one_pass'], r['ours_recommended']['peak_mb']))
    print(f"\n{'data':>12} {'thr':>3} " + ' '.join(f'{n:>15}' for n, _ in TARGETS) + f" {'calls / ref':>12} {'set peak MB':>12}")
    print(f"{'target':>12} {'':>3} " + ' '.join(f'{t:>15}' for _, t in TARGETS))
    for size, threads, *v in rows:
        print(f'{size:>12} {threads:>3} ' + ' '.join(f'{x:>14.2f}x' for x in v[:6]) + f' {v[6]:>11.2f}x {v[7]:>12.1f}')
    print("\nset: [*default_metrics(vocab), TopKAccuracy(2)] (a column per label) fed as fastai's Recorder feeds it; ref: the "
          "hand-written one-pass metric; fastai: F1ScoreMulti macro/micro/None + accuracy_multi; tm: torchmetrics "
          "MultilabelFBetaScore; calls / ref: fastai calling that many columns that do nothing, against the reference.")

if __name__ == '__main__': main()
