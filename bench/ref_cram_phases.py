#!/usr/bin/python3
"""The torch reference's cram loop (../shared/bench/ref_cram.py, --batch B: optimise_batched), timed by
phase the way bench/worker.ts times cramlab's, for bench/run.ts. shared/ is read-only: this copy adds the
timing and leaves the arithmetic as ref_cram.py has it (its helpers and llama_ref.py's model are imported).
  load    llama_ref.load_model (safetensors read, every weight widened to fp32 as llama_ref does)
  setup   from the model being loaded until the first step starts: embedding std (torch.std of the whole
          matrix), ids to tensors, mem init (randn * std, per-sample generators), embed(ids)
  first   the first forward + backward + AdamW + bookkeeping
  steady  the median of the steps after the first (wall, and process CPU seconds per step)
  decode  llama_ref.decode_step (KV cache), token after token from the first token of text 0: (time for
          1 + n tokens - time for 1 token) / n (no mem prefix: decode_step takes ids)
No no-mem baseline is computed (cramlab's cram() computes none either) and no early stop is taken
(--max-steps steps, patience = max steps), so every row runs the same number of steps.
  /usr/bin/python3 bench/ref_cram_phases.py --model DIR --ids FILE --N 64 --samples 4 --steps 6
        [--K 1] [--threads 1] [--decode 32] [--ref-dir ../shared/bench] --out FILE.json
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--N", type=int, required=True)
    ap.add_argument("--K", type=int, default=1)
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--decode", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--ref-dir", default=os.path.join(here, "..", "..", "shared", "bench"))
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.ref_dir))
    from llama_ref import load_model  # noqa: E402
    from ref_cram import Tracker, adamw_update_, init_mem, load_ids  # noqa: E402

    torch.set_num_threads(a.threads)
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # noqa: E731 (KB on Linux)
    t0 = time.perf_counter()
    model = load_model(a.model)
    model.attn_impl = "fused"  # what ref_cram.py uses for --batch > 1: its fastest path
    t_loaded = time.perf_counter()
    rss_load = rss()

    # setup: everything the loop needs before its first step
    d = model.config.hidden_size
    V = model.config.vocab_size
    emb_std = model.embed_weight.data.std()
    seqs = load_ids(a.ids)[: a.samples]
    ids = torch.tensor([s[: a.N] for s in seqs], dtype=torch.long)
    B, L = ids.shape
    K = a.K
    mem = torch.stack([init_mem(i, K, d, emb_std, a.seed) for i in range(B)])
    emb = model.embed(ids)
    lab = ids[:, 1:]
    m = torch.zeros_like(mem)
    v = torch.zeros_like(mem)
    trackers = [Tracker(L - 1, a.steps) for _ in range(B)]

    # the loop: optimise_batched's step, as ref_cram.py has it (no sample leaves: patience = steps)
    t_start = time.perf_counter()
    c_start = time.process_time()
    marks = []
    for it in range(a.steps):
        mem.requires_grad_(True)
        h = model.hidden(torch.cat([mem, emb], dim=1))
        logits = model.logits_from_hidden(h[:, K:K + L - 1])
        ce = F.cross_entropy(logits.reshape(-1, V), lab.reshape(-1), reduction="none").view(lab.shape)
        loss_per = ce.mean(1)
        (grad,) = torch.autograd.grad(loss_per.sum(), mem)
        with torch.no_grad():
            mem_eval = mem.detach().clone()
            mem = mem.detach()
            adamw_update_(mem, grad, m, v, it + 1, 1e-2, 0.9, 0.9, 0.01, 1e-8)
            nc = (logits.argmax(-1) == lab).sum(1).tolist()
        losses = loss_per.detach().tolist()
        for j in range(B):
            trackers[j].update(it, losses[j], nc[j], mem_eval[j])
        marks.append((time.perf_counter(), time.process_time()))
    per = [marks[i][0] - marks[i - 1][0] for i in range(1, len(marks))]
    per_cpu = [marks[i][1] - marks[i - 1][1] for i in range(1, len(marks))]

    decode = None
    if a.decode > 0:
        def gen(n):
            cache = [None] * model.config.num_hidden_layers
            tok = ids[:1, 0]
            t = time.perf_counter()
            for pos in range(n):
                tok = model.decode_step(tok, cache, pos).argmax(-1)
            return time.perf_counter() - t

        gen(1)  # warm
        one, many = gen(1), gen(1 + a.decode)
        decode = {"tokens": a.decode, "firstTokenS": one, "msPerToken": 1000 * (many - one) / a.decode}

    out = {
        "meta": {"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": B, "N": L, "K": K,
                 "model": os.path.abspath(a.model), "loop": "ref_cram.py optimise_batched (fused attention)"},
        "loadS": t_loaded - t0,
        "setupS": t_start - t_loaded,
        "firstStepS": marks[0][0] - t_start,
        "steadySPerStep": statistics.median(per) if per else None,
        "steadyCpuSPerStep": statistics.median(per_cpu) if per_cpu else None,
        "stepS": per,
        "wallS": marks[-1][0] - t_start,
        "cpuS": marks[-1][1] - c_start,
        "steps": a.steps,
        "textSteps": a.steps * B,
        "decode": decode,
        "rssAfterLoadKB": rss_load,
        "maxRssKB": rss(),
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
