"""Torch CPU composites measured in the same run as gradcomp's kernels (bench/baselines.ts).

Reads a JSON job list on stdin, prints one JSON object per job with the median seconds.
- ef_topk: GRACE-style `acc = g + r; v, i = acc.abs().topk(k, sorted=False); vals = acc[i];
  r = acc.index_fill_(0, i, 0)` (specs/performance.md §1.3).
- topk: `x.abs().topk(k, sorted=False)` plus the gather of the values.
- qsgd_encode: GRACE QSGD (norm, abs, scale, floor, uniform, compare, add, sign, mul, casts),
  bucketed with the max norm and int8 levels.
- powersgd: the PowerSGD hook's math for one matrix: P = M Q, torch.linalg.qr, Q = M^T P.
- dropit: `x.abs().topk(k, sorted=False)` plus gather (DropIT's forward).
"""
import json, sys, time, statistics
import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)


def median_time(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def run(job):
    n, reps, kind = job["n"], job["reps"], job["kind"]
    g = torch.randn(n)
    if kind == "ef_topk":
        k = job["k"]; r = torch.randn(n)
        def f():
            acc = g + r
            _, i = acc.abs().topk(k, sorted=False)
            vals = acc[i]
            acc.index_fill_(0, i, 0)
            return vals
        return median_time(f, reps)
    if kind in ("topk", "dropit"):
        k = job["k"]
        def f():
            _, i = g.abs().topk(k, sorted=False)
            return g[i], i.to(torch.int32)
        return median_time(f, reps)
    if kind == "qsgd_encode":
        s, d = job["levels"], 512
        pad = (-n) % d
        def f():
            x = torch.nn.functional.pad(g, (0, pad)).view(-1, d)
            norm = x.abs().max(dim=1, keepdim=True).values.clamp_min(1e-30)
            lvl = x.abs() / norm * s
            low = lvl.floor()
            up = torch.rand_like(lvl) < (lvl - low)
            q = (low + up.float()) * x.sign()
            return q.to(torch.int8), norm
        return median_time(f, reps)
    if kind == "powersgd":
        rows, cols, rank = job["rows"], job["cols"], job["rank"]
        m = torch.randn(rows, cols); q = torch.randn(cols, rank)
        def f():
            p = m @ q
            p, _ = torch.linalg.qr(p)
            return m.t() @ p
        return median_time(f, reps)
    raise ValueError(kind)


jobs = json.load(sys.stdin)
print(json.dumps([{"id": j["id"], "seconds": run(j)} for j in jobs]))
