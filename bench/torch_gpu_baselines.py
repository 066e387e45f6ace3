"""PyTorch GPU baselines for the benchmark suite's GPU section (bench/gpu.ts), measured in the same
run on the same device: CUDA events around each run, 3 warm-ups, median of `reps`, a 256 MiB
buffer written between runs so nothing is reused from L2.
Reads a JSON job list on stdin, prints one JSON object per job: {"id", "ms"} or {"id", "error"}.
- eftopk: GRACE-style `acc = g + r; v, i = acc.abs().topk(k, sorted=False); vals = acc[i];
  r = acc.index_fill_(0, i, 0)` (specs/performance.md §1.3).
- topk / dropit-pack: `x.abs().topk(k, sorted=False)` plus the gather of the values.
- dropit-unpack: `torch.zeros(n).scatter_(0, idx, vals)`.
- qsgd-encode: GRACE's QSGD (norm, abs, scale, floor, uniform, compare, add, sign, mul, casts),
  bucketed with the max norm and int8 levels; qsgd-decode: levels * norm / s with the sign.
- powersgd: the PowerSGD hook's math per matrix: P = M Q, torch.linalg.qr(P).Q, Q = M^T P;
  powersgd-batched: the same with torch.bmm and a batched QR (batch_tensors_with_same_shape).
- orth: torch.linalg.qr on each of `batch` matrices in a loop (the hook), and orth-batched: one
  batched torch.linalg.qr call.
- copy: y.copy_(x).
"""
import json
import statistics
import sys

import torch

dev = torch.device("cuda")
flush = torch.empty(256 << 20, dtype=torch.uint8, device=dev)


def timed(fn, prep, reps):
    times = []
    for i in range(-3, reps):
        if prep:
            prep()
        flush.fill_(i & 0xFF)
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        if i >= 0:
            times.append(a.elapsed_time(b))
    return statistics.median(times)


def job(j):
    op, n, a, b, c, reps = j["op"], j["n"], j["a"], j["b"], j["c"], j["reps"]
    prep = None
    if op == "copy":
        x = torch.randn(n, device=dev); y = torch.empty_like(x)
        fn = lambda: y.copy_(x)
    elif op in ("eftopk", "topk"):
        k = round(a * n)
        g = torch.randn(n, device=dev)
        r0 = 0.1 * torch.randn(n, device=dev)
        r = r0.clone()
        if op == "eftopk":
            def prep():
                r.copy_(r0)

            def fn():
                acc = g + r
                _, i = acc.abs().topk(k, sorted=False)
                vals = acc[i]
                r.copy_(acc.index_fill_(0, i, 0))
                return vals
        else:
            def fn():
                _, i = g.abs().topk(k, sorted=False)
                return g[i], i
    elif op == "dropit-pack":
        k = n - int(a * n + 1e-9)
        x = torch.randn(n, device=dev)

        def fn():
            _, i = x.abs().topk(k, sorted=False)
            return x[i], i.int()
    elif op == "dropit-unpack":
        k = n - int(a * n + 1e-9)
        x = torch.randn(n, device=dev)
        _, i = x.abs().topk(k, sorted=False)
        vals = x[i]

        def fn():
            return torch.zeros(n, device=dev).scatter_(0, i, vals)
    elif op in ("qsgd-encode", "qsgd-decode"):
        s, bucket = int(a), int(b)
        x = torch.randn(n, device=dev)
        pad = (-n) % bucket

        def encode():
            xb = torch.nn.functional.pad(x, (0, pad)).view(-1, bucket)
            norm = xb.abs().max(dim=1, keepdim=True).values
            scaled = xb.abs() / norm * s
            low = scaled.floor()
            prob = torch.empty_like(scaled).uniform_()
            level = low + (prob < (scaled - low)).float()
            signed = (level * xb.sign()).to(torch.int8)
            return signed, norm

        if op == "qsgd-encode":
            fn = encode
        else:
            codes, norms = encode()

            def fn():
                return (codes.float() * (norms / s)).view(-1)[:n]
    elif op in ("powersgd", "powersgd-batched"):
        batch, rows, cols, rank = n, int(a), int(b), int(c)
        m = torch.randn(batch, rows, cols, device=dev)
        q0 = torch.randn(batch, cols, rank, device=dev)
        q = q0.clone()

        def prep():
            q.copy_(q0)

        if op == "powersgd":
            def fn():
                for i in range(batch):
                    p = m[i] @ q[i]
                    p = torch.linalg.qr(p).Q
                    q[i] = m[i].t() @ p
        else:
            def fn():
                p = torch.bmm(m, q)
                p = torch.linalg.qr(p).Q
                q.copy_(torch.bmm(m.transpose(1, 2), p))
    elif op in ("orth", "orth-batched"):
        batch, rows, rank = n, int(a), int(c)
        p = torch.randn(batch, rows, rank, device=dev)
        if op == "orth":
            def fn():
                for i in range(batch):
                    torch.linalg.qr(p[i])
        else:
            def fn():
                torch.linalg.qr(p)
    else:
        raise ValueError(op)
    return timed(fn, prep, reps)


def main():
    jobs = json.load(sys.stdin)
    for j in jobs:
        try:
            ms = job(j)
            print(json.dumps({"id": j["id"], "ms": ms}), flush=True)
        except Exception as e:  # one failing baseline must not hide the others
            print(json.dumps({"id": j["id"], "error": str(e)[:200]}), flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
