"""ELIC (uneven channel groups × checkerboard context) with mixers at the conditioning sites."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from compressai.entropy_models import GaussianConditional
from torch import nn

from acbench.codecs import coder
from acbench.codecs.base import (
    CodecError,
    ConditionalCodec,
    RefState,
    Streams,
    entropy_fp32,
    fit_spatial,
    ste_round,
)

#: compressai's groups are [16, 16, 32, 64, M - 128], tuned for M = 320
_HEAD_GROUPS = (16, 16, 32, 64)
_VARIANTS = {"chandelier": "elic2022-chandelier", "official": "elic2022-official"}

#: quantize(k, step, means, scales, mask) -> ŷ of group k, valid where ``mask`` is set
Quantizer = Callable[[int, int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def elic_groups(M: int) -> tuple[int, ...]:
    """ELIC's uneven channel groups scaled to ``M`` channels.

    The first four groups keep compressai's proportions for M = 320 (16, 16, 32, 64 of 320:
    5 %, 5 %, 10 %, 20 % of M, rounded half up, at least 1 channel each); the last group takes
    the rest. M = 320 gives compressai's default ``[16, 16, 32, 64, 192]``.

    Raises:
        CodecError: ``M < 5`` (five groups need five channels).
    """
    if M < len(_HEAD_GROUPS) + 1:
        raise CodecError(f"ELIC needs M >= 5 latent channels for its 5 channel groups (got M={M})")
    head = [max(1, (2 * M * g + 320) // 640) for g in _HEAD_GROUPS]
    return (*head, M - sum(head))


def checkerboard(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean [h, w] mask of the anchors (even parity, compressai's ``anchor_parity="even"``)."""
    i = torch.arange(h, device=device)[:, None]
    j = torch.arange(w, device=device)[None, :]
    return (i + j) % 2 == 0


class _PerGroup(nn.ModuleList):
    """One mixer per channel group (ELIC's ``latent_prior`` site)."""

    def identity_init(self) -> None:
        for m in self:
            m.identity_init()


class ELIC(ConditionalCodec):
    """ELIC (He, Yang, Peng, Ma, Qin, Wang, CVPR 2022), compressai ``elic2022-chandelier``.

    Uneven channel groups decoded one after another, each in two checkerboard passes (anchors,
    then non-anchors) [He et al., CVPR 2021]. Conditioned as in "Revisiting Associative
    Compression: I Can't Believe It's Not Better" (Xu et al., 2023): ``hyper_analysis`` mixes
    y_k with ŷ_{k-1} before h_a, ``hyper_synthesis`` mixes ẑ_k with ẑ_{k-1} before h_s.
    ``latent_prior`` mixes the Gaussian parameters of every channel group, in both checkerboard
    passes, with a 1×1 projection of ŷ_{k-1} (one mixer per group); ``hyper_prior`` replaces the
    factorized prior of z by a Gaussian whose mean and scale come from ẑ_{k-1}.

    All groups and passes of one image go into one rANS stream, so ``strings["y"][i]`` is one
    ``bytes`` per image and the coder's flush cost is paid once, not once per group and pass.

    Args:
        N: channels of g_a / g_s hidden layers and of the hyper-latent z.
        M: channels of the latent y.
        groups: channel groups (sum M); default :func:`elic_groups` ``(M)``.
        variant: ``chandelier`` (compressai ``elic2022-chandelier``: channel context from the
            first and the latest group) or ``official`` (``elic2022-official``: from all).
    """

    version = "1"
    stride = 64  # g_a ×16, h_a ×4
    supported_sites = ("hyper_analysis", "hyper_synthesis", "latent_prior", "hyper_prior")

    def __init__(
        self,
        N: int = 192,
        M: int = 320,
        groups: Sequence[int] | None = None,
        variant: str = "chandelier",
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        import compressai.models  # noqa: F401  (fills the registry)
        from compressai.registry import MODELS

        from acbench.registry import MIXERS

        if variant not in _VARIANTS:
            raise CodecError(f"unknown ELIC variant {variant!r}; choose one of: {', '.join(_VARIANTS)}")
        groups = elic_groups(M) if groups is None else tuple(int(g) for g in groups)
        if sum(groups) != M or min(groups) < 1:
            raise CodecError(f"ELIC groups {list(groups)} must be positive and sum to M={M}")
        self.N, self.M, self.groups, self.variant = N, M, groups, variant
        self.base = MODELS[_VARIANTS[variant]](N=N, M=M, groups=list(groups))
        if "hyper_analysis" in self.sites:
            self._mixer("hyper_analysis", M)
        if "hyper_synthesis" in self.sites:
            self._mixer("hyper_synthesis", N)
        if "latent_prior" in self.sites:
            mixer = MIXERS.get(self.mixer_name)
            self.mixers["latent_prior"] = _PerGroup(mixer(2 * g, **self.mixer_params) for g in groups)
            self.lp_proj = nn.Conv2d(M, 2 * M, 1)  # split by group: a 1×1 projection per group
        if "hyper_prior" in self.sites:
            self._mixer("hyper_prior", 2 * N)
            self._add_hyper_prior(N)

    def arch(self) -> dict[str, Any]:
        return {
            "codec": "elic",
            "params": {"N": self.N, "M": self.M, "groups": list(self.groups), "variant": self.variant},
            "sites": list(self.sites),
            "mixer": self.mixer_name,
            "mixer_params": self.mixer_params,
            "reference": self.reference,
        }

    # -- pieces ------------------------------------------------------------------------------
    @property
    def _hyper(self) -> nn.Module:
        return self.base.latent_codec["hyper"]

    @property
    def _groups_codec(self) -> nn.Module:
        return self.base.latent_codec["y"]

    def _gc(self, k: int) -> GaussianConditional:
        return self._groups_codec.latent_codec[f"y{k}"].latent_codec["y"].gaussian_conditional

    def analyse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.base.g_a(x)
        return y, self._hyper.h_a(y)

    def _side(self, z_hat: torch.Tensor, ref: RefState | None) -> torch.Tensor:
        """h_s(ẑ): the hyper parameters shared by every group."""
        return self._hyper.h_s(self._hyper_synthesis_in(z_hat, ref))

    def _code_y(
        self, side: torch.Tensor, ref: RefState | None, quantize: Quantizer
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """The group × checkerboard-pass loop shared by forward, compress and decompress.

        Encoder and decoder run this same code on the same values, so their entropy parameters
        agree bit for bit. Everything is computed on the full grid (a 3×3 mixer sees the same
        neighbours in training and coding); ``quantize`` gives ŷ of group ``k`` (STE, encode
        or decode), used only where ``mask`` marks the current pass.

        Returns:
            per group: ŷ, means and scales (each position's from the pass that codes it).
        """
        gcodec = self._groups_codec
        b, _, h, w = side.shape
        feats: Sequence[torch.Tensor | None] = [None] * len(self.groups)
        if "latent_prior" in self.sites:
            feats = fit_spatial(self.lp_proj(ref.y), side).split([2 * g for g in self.groups], 1)
        anchor = checkerboard(h, w, side.device)
        y_hats: list[torch.Tensor] = []
        means: list[torch.Tensor] = []
        scales: list[torch.Tensor] = []
        for k, g in enumerate(self.groups):
            cb = gcodec.latent_codec[f"y{k}"]
            side_k = side
            if k:
                ch = gcodec.channel_context[f"y{k}"](gcodec.merge_y(*y_hats))
                side_k = gcodec.merge_params(ch, side)
            y_hat = side.new_zeros(b, g, h, w)
            for step, mask in enumerate((anchor, ~anchor)):
                ctx = (
                    side.new_zeros(b, cb.context_prediction.out_channels, h, w)
                    if step == 0
                    else cb.context_prediction(y_hat)
                )
                params = cb.entropy_parameters(cb.merge(ctx, side_k))
                if feats[k] is not None:
                    params = self.mixers["latent_prior"][k](params, feats[k])
                sc, mu = cb.latent_codec["y"]._chunk(params)
                y_hat = torch.where(mask, quantize(k, step, mu, sc, mask), y_hat)
                if step == 0:
                    mu_k, sc_k = mu, sc
                else:
                    mu_k, sc_k = torch.where(mask, mu, mu_k), torch.where(mask, sc, sc_k)
            y_hats.append(y_hat)
            means.append(mu_k)
            scales.append(sc_k)
        return y_hats, means, scales

    def _tables(self) -> list[tuple[list, list, list]]:
        """Each group's (cdf, cdf lengths, offsets) as lists (cached while the tables live)."""
        try:
            return [coder.tables(self._gc(k)) for k in range(len(self.groups))]
        except RuntimeError as e:
            raise CodecError(f"ELIC: {e}") from None

    # -- the contract -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, ref: RefState | None = None) -> dict[str, Any]:
        ref = self._ref(ref)
        y = self.base.g_a(x)
        z = self._hyper.h_a(self._hyper_in(y, ref))
        if "hyper_prior" in self.sites:
            zsc, zmu = self._z_params(z, ref)
            _, z_lik = entropy_fp32(self.z_conditional, z, zsc, means=zmu)
            zmu = zmu.float()
            z_hat = ste_round(z.float() - zmu) + zmu
        else:
            eb = self._hyper.entropy_bottleneck
            _, z_lik = entropy_fp32(eb, z)
            med = eb._get_medians()
            z_hat = ste_round(z.float() - med) + med  # ELIC (compressai quantizer="ste"): h_s sees hard ẑ
        ys = y.float().split(self.groups, 1)
        # the context and entropy-parameter networks stay in float32 under autocast: in bf16
        # their means move ŷ's rounding and cost ~2 % of the rate (measured, tests/test_amp.py)
        y_hats, means, scales = entropy_fp32(
            self._code_y,
            self._side(z_hat, ref),
            ref,
            lambda k, step, mu, sc, mask: ste_round(ys[k] - mu) + mu,
        )
        y_lik = torch.cat(
            [entropy_fp32(self._gc(k), ys[k], scales[k], means=means[k])[1] for k in range(len(ys))], 1
        )
        y_hat = torch.cat(y_hats, 1)
        x_hat = self.base.g_s(y_hat)
        return {
            "x_hat": x_hat,
            "likelihoods": {"y": y_lik, "z": z_lik},
            "ref": RefState(y_hat, z_hat, x_hat),  # x_hat: for a consumer using reference="reconstruction"
        }

    @torch.no_grad()
    def compress(
        self, x: torch.Tensor, ref: RefState | None = None, need_x_hat: bool = False, streams: Streams = None
    ) -> dict[str, Any]:
        from compressai.ans import BufferedRansEncoder

        ref = self._ref(ref)
        y = self.base.g_a(x)
        z = self._hyper.h_a(self._hyper_in(y, ref))
        if "hyper_prior" in self.sites:
            zsc, zmu = self._z_params(z, ref)
            zc = self.z_conditional
            idx = coder.gaussian_indexes(zc, zsc)
            z_strings = coder.compress(zc, z, idx, zmu, streams)
            z_hat = coder.decompress(zc, z_strings, idx, zmu)  # exactly what the decoder gets
            _, z_lik = zc(z, zsc, means=zmu, training=False)
        else:
            eb = self._hyper.entropy_bottleneck
            z_strings = coder.bottleneck_compress(eb, z, streams)
            z_hat = coder.bottleneck_decompress(eb, z_strings, tuple(z.shape[-2:]))
            _, z_lik = eb(z, training=False)
        tables = self._tables()
        own = [BufferedRansEncoder() for _ in range(len(x))]
        encoders = own if streams is None else [coder.Tee(a, b) for a, b in zip(own, streams, strict=True)]
        ys = y.split(self.groups, 1)

        def encode(k: int, step: int, mu: torch.Tensor, sc: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            q = torch.round(ys[k] - mu)
            sym = q[..., mask].int().flatten(1).tolist()
            idx = coder.gaussian_indexes(self._gc(k), sc[..., mask]).flatten(1).tolist()
            for enc, s, i in zip(encoders, sym, idx):
                enc.encode_with_indexes(s, i, *tables[k])
            return q + mu

        y_hats, means, scales = self._code_y(self._side(z_hat, ref), ref, encode)
        y_lik = torch.cat(
            [self._gc(k)(ys[k], scales[k], means=means[k], training=False)[1] for k in range(len(ys))], 1
        )
        y_hat = torch.cat(y_hats, 1)
        x_hat = (
            self.base.g_s(y_hat).clamp_(0, 1) if (need_x_hat or self.reference == "reconstruction") else None
        )
        return {
            "strings": {"y": [enc.flush() for enc in own], "z": z_strings},
            "shape": tuple(z.shape[-2:]),
            "likelihoods": {"y": y_lik, "z": z_lik},
            "ref": RefState(y_hat, z_hat, x_hat),
            "x_hat": x_hat,
        }

    @torch.no_grad()
    def decompress(
        self,
        strings: dict[str, list[bytes]] | None,
        shape: Any,
        ref: RefState | None = None,
        streams: Streams = None,
    ) -> dict[str, Any]:
        ref = self._ref(ref)
        device = next(self.parameters()).device
        zs = None if streams is not None else strings["z"]
        if "hyper_prior" in self.sites:
            n = len(streams) if streams is not None else len(zs)
            dummy = torch.zeros(n, self.N, *shape, device=device)
            zsc, zmu = self._z_params(dummy, ref)
            zc = self.z_conditional
            z_hat = coder.decompress(zc, zs, coder.gaussian_indexes(zc, zsc), zmu, streams)
        else:
            z_hat = coder.bottleneck_decompress(self._hyper.entropy_bottleneck, zs, tuple(shape), streams)
        tables = self._tables()
        decoders = list(streams) if streams is not None else coder.stream_decoders(strings["y"])

        def decode(k: int, step: int, mu: torch.Tensor, sc: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            idx = coder.gaussian_indexes(self._gc(k), sc[..., mask]).flatten(1).tolist()
            vals = [dec.decode_stream(i, *tables[k]) for dec, i in zip(decoders, idx)]
            q = torch.zeros_like(mu)
            q[..., mask] = torch.tensor(vals, dtype=mu.dtype, device=mu.device).reshape(
                len(vals), mu.shape[1], -1
            )
            return q + mu

        y_hats, _, _ = self._code_y(self._side(z_hat, ref), ref, decode)
        y_hat = torch.cat(y_hats, 1)
        x_hat = self.base.g_s(y_hat).clamp_(0, 1)
        return {"x_hat": x_hat, "ref": RefState(y_hat, z_hat, x_hat)}

    def aux_loss(self) -> torch.Tensor:
        return self.base.aux_loss()

    def update(self, force: bool = True) -> None:
        from compressai.models.base import CompressionModel

        CompressionModel.update(self, force=True)  # walks every entropy model, z_conditional's included
