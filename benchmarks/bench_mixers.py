"""Cost of a mixer against FiLM: parameters and one forward + backward, at one thread.

    python benchmarks/bench_mixers.py                                   # attention vs film
    python benchmarks/bench_mixers.py --mixers film attention conv1x1 --repeats 30
    python benchmarks/bench_mixers.py --sites latent_prior hyper_analysis,hyper_synthesis

For each shape (``tiny``: MSHP N=8/M=12, 64-px tiles, batch 2; ``cpu``: N=32/M=48, 64-px,
batch 8, the presets' conditional training; ``cpu@256``: the cpu codec on 256-px tiles, where a
latent is 16×16 and a window no longer covers it) and each site set, it builds the conditional
codec with each mixer and reports the mixers' parameters and the median time of one training
step's forward + backward (rate + λ·255²·MSE) of the whole codec and of the mixers alone,
as ratios to the first mixer. Timings are medians of ``--repeats`` interleaved rounds (ABBA
order, ``benchlib.interleave``, so a busy machine slows every arm alike); ``busy`` is the mean
number of cores other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import benchlib  # noqa: E402

SHAPES = {  # name: (N, M, tile, batch)
    "tiny": (8, 12, 64, 2),
    "cpu": (32, 48, 64, 8),
    "cpu@256": (32, 48, 256, 8),
}


def _arm(mixer: str, n: int, m: int, tile: int, batch: int, sites: tuple[str, ...]):
    """(params of the mixers, whole step, mixers-only step): the two steps as closures."""
    import torch

    from acbench.codecs.base import build_codec

    torch.manual_seed(0)
    base = build_codec("mshp", {"N": n, "M": m}).eval()
    cond = build_codec("mshp", {"N": n, "M": m}, sites, mixer).train()
    cond.warm_start(base.state_dict())
    with torch.no_grad():  # a trained-looking mixer (identity mixers could take shortcuts)
        for p in cond.mixers.parameters():
            p.add_(0.01 * torch.randn_like(p))
    x = torch.rand(batch, 3, tile, tile)
    with torch.no_grad():
        ref = base(torch.rand(batch, 3, tile, tile))["ref"]
    pixels = batch * tile * tile

    def whole() -> None:
        out = cond(x, ref)
        rate = sum(-lik.clamp_min(1e-9).log2().sum() for lik in out["likelihoods"].values()) / pixels
        loss = rate + 0.0067 * 255**2 * (out["x_hat"] - x).pow(2).mean()
        cond.zero_grad(set_to_none=True)
        loss.backward()

    # the mixers alone, on the tensors they see in the codec (recorded by hooks)
    seen: list[tuple] = []
    hooks = [
        mod.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp[0].detach(), inp[1].detach())))
        for mod in cond.mixers.values()
    ]
    whole()
    for h in hooks:
        h.remove()

    def mixers_only() -> None:
        total = sum(mod(a.requires_grad_(), r).square().mean() for mod, a, r in seen)
        cond.zero_grad(set_to_none=True)
        total.backward()

    params = sum(p.numel() for p in cond.mixers.parameters())
    return params, whole, mixers_only


def _ms(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mixers", nargs="+", default=["film", "attention"], help="the first is the reference")
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--sites", nargs="+", default=["latent_prior"], help="comma-joined site sets")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; median of {args.repeats} interleaved rounds")
    ref_name = args.mixers[0]
    head = (
        f"{'shape':8} {'sites':32} {'mixer':10} {'params':>8} {'×':>6} "
        f"{'step ms':>8} {'×':>6} {'mixer ms':>9} {'×':>6} {'busy':>6}"
    )
    print(head)
    print("-" * len(head))
    for shape in args.shapes:
        n, m, tile, batch = SHAPES[shape]
        for site_set in args.sites:
            sites = tuple(site_set.split(","))
            arms = {mx: _arm(mx, n, m, tile, batch, sites) for mx in args.mixers}
            for _, whole, only in arms.values():  # warm-up
                whole()
                only()
            timed = {}
            for mx, (_, whole, only) in arms.items():
                timed[f"{mx} step"] = lambda r, f=whole: _ms(f)
                timed[f"{mx} mixer"] = lambda r, f=only: _ms(f)
            rounds = benchlib.interleave(timed, args.repeats)  # ABBA order, foreign load recorded
            t_whole = {mx: rounds[f"{mx} step"] for mx in arms}
            t_only = {mx: rounds[f"{mx} mixer"] for mx in arms}
            busy = statistics.mean(x for xs in rounds.foreign.values() for x in xs)
            p0 = arms[ref_name][0]
            w0, o0 = benchlib.med(t_whole[ref_name]), benchlib.med(t_only[ref_name])
            for mx, (params, _, _) in arms.items():
                w, o = benchlib.med(t_whole[mx]), benchlib.med(t_only[mx])
                print(
                    f"{shape:8} {site_set:32} {mx:10} {params:8,d} {params / p0:6.2f} "
                    f"{w:8.2f} {w / w0:6.2f} {o:9.3f} {o / o0:6.2f} {busy:6.2f}"
                )


if __name__ == "__main__":
    main()
