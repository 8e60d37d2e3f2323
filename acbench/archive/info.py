"""Archives, info (the format: :mod:`acbench.archive`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acbench.archive.layout import parent_bits
from acbench.archive.read import read_header


def archive_info(path: Path) -> dict[str, Any]:
    """What an archive holds, without decoding: model identity, chains, per-image rates.

    Returns:
        ``path``, ``version``, ``bytes``, ``complete`` (file as long as its header says),
        ``trailing_bytes`` (bytes after the archive's end, ignored; not counted in bpp),
        ``images``, ``pixels``, ``chains``, ``chain_length``, ``model`` (run id, checkpoints and
        whether embedded), ``ordering``, ``coder`` (platform that encoded), the file's
        ``bpp_file``, ``bpp_streams``, ``bpp_est``, ``bpp_baseline_est``/``bpp_baseline_real``
        (each image alone with the baseline; ``None`` if not recorded), ``overhead_bytes``,
        ``model_bytes``, ``psnr_mean``; the single streams against per-image streams:
        ``flush_bytes_per_image`` (stream bytes over the estimate, per image),
        ``image_stream_bytes`` and ``flush_bytes_per_image_before`` (the same images with one
        stream per image and component, as format version 1 stored them), ``bpp_baseline_stream``
        (each image alone with the baseline in one stream of its own), ``bpp_baseline_chain_stream``
        (the baseline alone, but one stream per chain as here: the flush-matched anchor, whose
        difference to the bitstreams is content alone); ``streams``: one dict per
        chain (images, bytes, bpp); and ``items``: one dict per image (name, source, mode, width,
        height, chain, position: depth + 1 in a tree); ``structure`` (``chain`` or ``tree``) and
        ``parent_bits`` (the stored parent indices of a tree, ⌈log2 tree size⌉ bits each). Rate
        figures not recorded are ``None``.
    """
    arc = read_header(Path(path))
    h, it = arc.header, arc.header["items"]
    items, chains = [], []
    for cid, (ch, parents) in enumerate(zip(arc.chains(), arc.parents())):
        depth: list[int] = []
        for pos, i in enumerate(ch):
            depth.append(0 if pos == 0 else depth[pos - 1 if parents is None else parents[pos]] + 1)
            items.append(
                {
                    "name": it["name"][i],
                    "source": it["src"][i],
                    "mode": it["mode"][i],
                    "width": it["w"][i],
                    "height": it["h"][i],
                    "chain": cid,
                    "position": depth[pos] + 1,
                }
            )
        cpx = sum(it["w"][i] * it["h"][i] for i in ch)
        chains.append({"images": len(ch), "bytes": h["streams"][cid], "bpp": 8 * h["streams"][cid] / cpx})
    px = sum(w * hh for w, hh in zip(it["w"], it["h"]))
    streams = sum(h["streams"])
    size = min(arc.file_size, arc.end)  # bytes appended after the end are not the archive's
    embedded = [r for r in ("first", "conditional") if h["model"][r].get("embedded")]
    model_bytes = sum(h["model"][r]["bytes"] for r in embedded)
    tot = h["totals"]
    n = arc.n

    def per_image(nbytes: int | None) -> float | None:
        return None if nbytes is None else (8 * nbytes - tot["bits_est"]) / 8 / n

    return {
        "path": str(arc.path),
        "version": h["version"],
        "bytes": arc.file_size,
        "complete": arc.file_size >= arc.end,
        "trailing_bytes": arc.trailing,
        "images": arc.n,
        "pixels": px,
        "chains": len(h["chains"]),
        "chain_length": h.get("chain_length"),
        "structure": h.get("structure", "chain"),
        "parent_bits": sum((s - 1) * parent_bits(s) for s in h["chains"]) if "parents" in h else 0,
        "model": {
            "run_id": h["model"].get("run_id"),
            "embedded": len(embedded) == 2,
            **{
                r: {k: h["model"][r][k] for k in ("run_id", "file", "sha256", "bytes")}
                for r in ("first", "conditional")
            },
        },
        "ordering": h.get("ordering", {}),
        "coder": h.get("coder", {}),
        "bpp_file": 8 * size / px,
        "bpp_streams": 8 * streams / px,
        "bpp_est": tot["bits_est"] / px,
        "bpp_baseline_est": None if tot["base_bits_est"] is None else tot["base_bits_est"] / px,
        "bpp_baseline_real": None if tot["base_bytes"] is None else 8 * tot["base_bytes"] / px,
        "bpp_baseline_stream": (
            None if tot.get("base_stream_bytes") is None else 8 * tot["base_stream_bytes"] / px
        ),
        "bpp_baseline_chain_stream": (
            None if tot.get("base_chain_bytes") is None else 8 * tot["base_chain_bytes"] / px
        ),
        "psnr_mean": tot["psnr_mean"],
        "stream_bytes": streams,
        "flush_bytes_per_image": per_image(streams),
        "image_stream_bytes": tot.get("image_bytes"),
        "flush_bytes_per_image_before": per_image(tot.get("image_bytes")),
        "model_bytes": model_bytes,
        "overhead_bytes": size - streams - model_bytes,
        "streams": chains,
        "items": items,
    }


def format_info(info: dict[str, Any], max_items: int = 30) -> str:
    """Human-readable :func:`archive_info` (the first ``max_items`` images listed; 0 = all) or
    :func:`compress_folder` summary (no image list)."""

    def f(v: float | None, fmt: str = ".4f") -> str:
        return "n/a" if v is None else format(v, fmt)

    m = info["model"]
    o = info["ordering"]
    lines = [
        f"{info['path']}: acbench archive v{info['version']}, {info['bytes']:,} bytes"
        + ("" if info["complete"] else "  (TRUNCATED: shorter than its header says)")
        + (
            f"  ({info['trailing_bytes']:,} bytes after the archive's end: ignored)"
            if info.get("trailing_bytes")
            else ""
        ),
        f"  model     run {m['run_id']}  ({'embedded' if m['embedded'] else 'not embedded'}); "
        f"first image: run {m['first']['run_id']}/{m['first']['file']} sha256 {m['first']['sha256'][:12]}…, "
        f"others: {m['conditional']['file']} sha256 {m['conditional']['sha256'][:12]}…",
        f"  ordering  {o.get('name')} on {o.get('features')} features ({o.get('embedded_at')})"
        + (f"; {o['note']}" if o.get("note") else ""),
        (
            f"  images    {info['images']} in {info['chains']} chain(s) of ≤ {info['chain_length']}, "
            if info.get("structure", "chain") == "chain"
            else f"  images    {info['images']} in {info['chains']} tree(s) of depth < "
            f"{info['chain_length']} (parents: {info['parent_bits']:,} bits, ⌈log2 tree size⌉ each, "
            "in the header), "
        )
        + f"{info['pixels']:,} px",
        _lossy_line(info),
        f"  bpp       file {info['bpp_file']:.4f}  (bitstreams {info['bpp_streams']:.4f}, "
        f"model estimate {info['bpp_est']:.4f})",
        f"  baseline  each image alone: {f(info['bpp_baseline_real'])} real "
        f"({f(info.get('bpp_baseline_stream'))} in one stream per image, "
        f"{f(info.get('bpp_baseline_chain_stream'))} in one per chain), "
        f"{f(info['bpp_baseline_est'])} estimated"
        + (
            f"  → file vs baseline {100 * (info['bpp_file'] / info['bpp_baseline_real'] - 1):+.2f} %"
            if info["bpp_baseline_real"]
            else ""
        ),
        _streams_line(info),
        f"  overhead  {info['overhead_bytes']:,} bytes "
        f"({info['overhead_bytes'] / info['images']:.1f} per image)"
        + (f" + {info['model_bytes']:,} bytes of embedded model" if info["model_bytes"] else ""),
        "",
        f"  {'chain':>5} {'pos':>3} {'size':>11} {'stream':>8} {'bpp':>7}  name   (stream: the chain's)",
    ]
    if "items" not in info:  # a compress summary
        return "\n".join(lines[:-2])
    items = info["items"] if not max_items else info["items"][:max_items]
    for x in items:
        c = info["streams"][x["chain"]]
        stream = (f"{c['bytes']:>8} {c['bpp']:>7.4f}") if x["position"] == 1 else f"{'':>8} {'':>7}"
        lines.append(
            f"  {x['chain']:>5} {x['position']:>3} {str(x['width']) + 'x' + str(x['height']):>11} "
            f"{stream}  {x['name']}"
        )
    if len(items) < len(info["items"]):
        lines.append(f"  … {len(info['items']) - len(items)} more")
    return "\n".join(lines)


def _streams_line(info: dict[str, Any]) -> str:
    """The flush: one rANS stream per chain, against one per image and component."""
    line = (
        f"  streams   one rANS stream per chain: {info['stream_bytes']:,} bytes, "
        f"{info['flush_bytes_per_image']:.2f} per image over the estimate"
    )
    if info.get("image_stream_bytes") is not None:
        line += (
            f" (per-image streams: {info['image_stream_bytes']:,} bytes, "
            f"{info['flush_bytes_per_image_before']:.2f} per image)"
        )
    return line


def _lossy_line(info: dict[str, Any]) -> str:
    """What decompressing restores, and how far it is from the originals (PSNR, 8-bit RGB)."""
    what = (
        "  lossy     decompress restores the codec's reconstruction (checked against the encoder's "
        "by checksum), not the original pixels; "
    )
    if info.get("psnr_mean") is None:
        return what + "PSNR against the originals was not recorded"
    if "psnr_min" in info:  # a compress summary: the originals were at hand
        return (
            what + f"PSNR against the originals: mean {info['psnr_mean']:.2f} dB, "
            f"lowest {info['psnr_min']:.2f} dB"
        )
    return (
        what + f"mean PSNR against the originals {info['psnr_mean']:.2f} dB, as measured when "
        "compressing (info does not read the originals)"
    )


def format_restored(summary: dict[str, Any]) -> str:
    """Human-readable :func:`decompress_archive` summary (warnings last, one per line)."""
    head = (
        f"restored {summary['restored']} of {summary['images']} images into {summary['out_dir']} "
        f"in {summary['seconds']:.1f} s"
    )
    return "\n".join([head, *(f"warning: {w}" for w in summary["warnings"])])
