"""The conditional codec contract shared by every codec adapter.

A codec is an ``nn.Module`` built as ``Codec(sites=..., mixer=..., reference=..., **hp)``;
``sites=()`` is the unconditioned baseline. Every codec returns
``{"x_hat", "likelihoods": {"y", "z"}, "ref"}`` from :meth:`forward` and has ``aux_loss()``, so
one training loop serves every codec × mixer. ``ref`` is the :class:`RefState` that the *decoder*
holds after decoding the image: the next image of the chain is conditioned on it and on nothing
else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: one rANS coder per batch item, shared by several images (see :mod:`acbench.codecs.coder`)
Streams = Sequence[Any] | None


class CodecError(ValueError):
    """A codec cannot be built or loaded as asked; the message says why and what to do."""


@dataclass
class RefState:
    """What the decoder holds for the previously coded image."""

    y: torch.Tensor  # decoded latents ŷ
    z: torch.Tensor  # decoded hyper-latents ẑ
    x_hat: torch.Tensor | None = None  # reconstruction (for reference="reconstruction")

    def row(self, i: int) -> RefState:
        """Image ``i`` of the batch as a batch of one (views, no copies)."""
        x_hat = None if self.x_hat is None else self.x_hat[i : i + 1]
        return RefState(self.y[i : i + 1], self.z[i : i + 1], x_hat)

    def index(self, idx: torch.Tensor) -> RefState:
        """The states of a permuted / selected batch (used for shuffled references)."""
        return RefState(self.y[idx], self.z[idx], None if self.x_hat is None else self.x_hat[idx])


def fit_spatial(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Zero-pad or crop ``t`` (bottom/right) to the spatial size of ``like``.

    A chain may hold images of different sizes; the reference's features are then aligned at
    the top-left corner.
    """
    h, w = like.shape[-2:]
    t = t[..., :h, :w]
    dh, dw = h - t.shape[-2], w - t.shape[-1]
    if dh or dw:
        t = F.pad(t, (0, dw, 0, dh))
    return t


def entropy_fp32(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """Call an entropy model in float32, also inside a bf16/fp16 autocast region.

    CompressAI's likelihood lower bound (1e-9) underflows in half precision (log 0 = NaN), and
    the factorized prior's cumulative logits lose the rate's precision in bf16: the transforms
    may run in reduced precision, the entropy models may not.
    """

    def f32(v: Any) -> Any:
        if isinstance(v, RefState):
            return RefState(v.y.float(), v.z.float(), None if v.x_hat is None else v.x_hat.float())
        return v.float() if torch.is_tensor(v) else v

    with torch.autocast(_device_type(args), enabled=False):
        return model(*map(f32, args), **{k: f32(v) for k, v in kwargs.items()})


def _device_type(args: tuple[Any, ...]) -> str:
    return next((a.device.type for a in args if torch.is_tensor(a)), "cpu")


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through gradient."""
    return x + (torch.round(x) - x).detach()


def pad_to(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad ``x`` on the bottom/right to a multiple of ``stride``; returns (x, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


_CODER_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


def _resize_coder_buffers(module: nn.Module, state_dict: dict, prefix: str, *_: Any) -> None:
    """Let a checkpoint saved after ``update()`` load: CDF tables have data-dependent sizes."""
    for name, buf in module.named_buffers():
        key = prefix + name
        if (
            name.rsplit(".", 1)[-1] in _CODER_BUFFERS
            and key in state_dict
            and buf.shape != state_dict[key].shape
        ):
            buf.resize_(state_dict[key].shape)


class ConditionalCodec(nn.Module):
    """Base class of codec adapters. Subclasses set ``stride`` and ``supported_sites``.

    Args:
        sites: conditioning sites (subset of ``supported_sites``); ``()`` = baseline.
        mixer: registry name of the mixer placed at every site.
        mixer_params: the mixer's hyper-parameters.
        reference: ``latents`` (the decoded ŷ, ẑ of the previous image) or ``reconstruction``
            (re-analyse its decoded image with this codec's own analysis transforms).
    """

    version = "1"
    stride = 64
    supported_sites: tuple[str, ...] = ()

    def __init__(
        self,
        sites: tuple[str, ...] = (),
        mixer: str = "film",
        mixer_params: dict[str, Any] | None = None,
        reference: str = "latents",
    ) -> None:
        super().__init__()
        bad = [s for s in sites if s not in self.supported_sites]
        if bad:
            raise CodecError(
                f"codec {type(self).__name__} does not support site(s) {', '.join(bad)}; "
                f"it supports: {', '.join(self.supported_sites)}"
            )
        self.sites = tuple(sites)
        self.mixer_name = mixer
        self.mixer_params = dict(mixer_params or {})
        self.reference = reference
        self.mixers = nn.ModuleDict()
        self.register_load_state_dict_pre_hook(_resize_coder_buffers)

    # -- construction helpers ---------------------------------------------------------------
    def _mixer(self, site: str, channels: int) -> None:
        from acbench.registry import MIXERS

        self.mixers[site] = MIXERS.get(self.mixer_name)(channels, **self.mixer_params)

    def arch(self) -> dict[str, Any]:
        """Everything needed to rebuild this module (stored in every checkpoint)."""
        raise NotImplementedError

    @property
    def conditional(self) -> bool:
        return bool(self.sites)

    def identity_init(self) -> None:
        """Make every mixer pass its input through and ignore the reference."""
        for m in self.mixers.values():
            m.identity_init()

    def warm_start(self, baseline_state: dict[str, torch.Tensor]) -> set[str]:
        """Load the baseline's weights into the shared modules; mixers start as identities.

        Returns:
            the names of the parameters that now hold the baseline's values (not the mixers').
        """
        own = self.state_dict()
        shared = {k: v for k, v in baseline_state.items() if k in own and own[k].shape == v.shape}
        self.load_state_dict(shared, strict=False)
        self.identity_init()
        params = {n for n, _ in self.named_parameters()}
        return {k for k in shared if k in params and not k.startswith("mixers.")}

    def reference_state(self, prev: RefState) -> RefState:
        """The reference as this codec uses it (latents, or re-analysed reconstruction)."""
        if self.reference == "reconstruction":
            if prev.x_hat is None:
                raise CodecError("reference='reconstruction' needs the previous reconstruction")
            y, z = self.analyse(prev.x_hat)
            return RefState(y, z, prev.x_hat)
        return prev

    # -- the conditioning sites, shared by every codec ---------------------------------------
    def _add_hyper_prior(self, N: int) -> None:
        """The ``hyper_prior`` site's modules: a projection of ẑ_{k-1}, a learned prior and a
        Gaussian entropy model for z (its mixer is made by the codec, in its own order)."""
        from compressai.entropy_models import GaussianConditional

        self.hp_proj = nn.Conv2d(N, 2 * N, 1)
        self.z_prior = nn.Parameter(torch.cat([torch.full((1, N, 1, 1), 2.0), torch.zeros(1, N, 1, 1)], 1))
        self.z_conditional = GaussianConditional(None)

    def _ref(self, ref: RefState | None) -> RefState | None:
        """The reference as the sites use it; ``None`` for a baseline (no sites)."""
        if not self.sites:
            return None
        if ref is None:
            raise ValueError("a conditional codec needs the reference state of the previous image")
        return self.reference_state(ref)

    def _hyper_in(self, y: torch.Tensor, ref: RefState | None) -> torch.Tensor:
        """h_a's input: y mixed with ŷ_{k-1} at the ``hyper_analysis`` site."""
        if "hyper_analysis" in self.sites:
            return self.mixers["hyper_analysis"](y, fit_spatial(ref.y, y))
        return y

    def _hyper_synthesis_in(self, z_hat: torch.Tensor, ref: RefState | None) -> torch.Tensor:
        """h_s's input: ẑ mixed with ẑ_{k-1} at the ``hyper_synthesis`` site."""
        if "hyper_synthesis" in self.sites:
            return self.mixers["hyper_synthesis"](z_hat, fit_spatial(ref.z, z_hat))
        return z_hat

    def _z_params(self, z: torch.Tensor, ref: RefState) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales, means) of z's Gaussian prior from ẑ_{k-1} at the ``hyper_prior`` site."""
        base = self.z_prior.expand(z.shape[0], -1, *z.shape[-2:])
        feat = self.hp_proj(fit_spatial(ref.z, z))
        scales, means = self.mixers["hyper_prior"](base, feat).chunk(2, 1)
        return scales, means

    # -- the contract -------------------------------------------------------------------------
    def analyse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous latents ``(y, z)`` of ``x`` (features for orderings)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, ref: RefState | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def compress(
        self, x: torch.Tensor, ref: RefState | None = None, need_x_hat: bool = False, streams: Streams = None
    ) -> dict[str, Any]:
        """Entropy-code ``x``: ``{"strings": {"y": [bytes]*B, "z": [...]}, "shape",
        "likelihoods", "ref", "x_hat"}``; ``ref`` equals what :meth:`decompress` will hold.

        ``streams``: one :class:`~acbench.codecs.coder.Stream` per batch item;
        each item's symbols are also appended to its stream, z before y, so that many images
        share one stream and one flush (the strings are returned as well)."""
        raise NotImplementedError

    def decompress(
        self,
        strings: dict[str, list[bytes]] | None,
        shape: Any,
        ref: RefState | None = None,
        streams: Streams = None,
    ) -> dict[str, Any]:
        """Decode: ``{"x_hat", "ref"}``; from ``streams`` (one ``RansDecoder`` per batch item,
        positioned at this image's symbols) instead of ``strings`` when given."""
        raise NotImplementedError

    def aux_loss(self) -> torch.Tensor:
        raise NotImplementedError

    def update(self, force: bool = True) -> None:
        """Rebuild the entropy coder's CDF tables (always forced: stale tables cost rate)."""
        raise NotImplementedError


def build_codec(
    name: str,
    params: dict[str, Any],
    sites: tuple[str, ...] = (),
    mixer: str = "film",
    mixer_params: dict[str, Any] | None = None,
    reference: str = "latents",
) -> ConditionalCodec:
    """Instantiate a registered codec."""
    from acbench.registry import CODECS

    return CODECS.get(name)(
        sites=tuple(sites), mixer=mixer, mixer_params=mixer_params, reference=reference, **params
    )


def save_checkpoint(path: Any, model: ConditionalCodec, **extra: Any) -> None:
    """Write ``{"arch", "state_dict", **extra}`` atomically (temp file, then ``os.replace``)."""
    from acbench.store import atomic_write

    state = {"arch": model.arch(), "state_dict": model.state_dict(), **extra}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_codec(path: Any, expect: dict[str, Any] | None = None) -> tuple[ConditionalCodec, dict]:
    """Rebuild a codec from a checkpoint (``weights_only=True``: a checkpoint cannot run code).

    Raises:
        CodecError: the checkpoint's architecture differs from ``expect``.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    arch = ckpt.get("arch")
    if not isinstance(arch, dict):
        raise CodecError(f"{path}: not an acbench checkpoint (no architecture record)")
    if expect is not None and arch != expect:
        diff = {k: (arch.get(k), expect.get(k)) for k in {*arch, *expect} if arch.get(k) != expect.get(k)}
        raise CodecError(
            f"{path}: checkpoint is for another architecture (checkpoint vs wanted: {diff}); "
            "delete it or point to the matching run"
        )
    model = build_codec(
        arch["codec"],
        arch["params"],
        tuple(arch["sites"]),
        arch["mixer"],
        arch["mixer_params"],
        arch["reference"],
    )
    model.load_state_dict(ckpt["state_dict"])
    return model, ckpt
