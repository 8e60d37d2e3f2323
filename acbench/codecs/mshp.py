"""MSHP (mean-scale hyperprior) with mixers at the conditioning sites."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from acbench.codecs import coder
from acbench.codecs.base import ConditionalCodec, RefState, Streams, entropy_fp32, fit_spatial, ste_round


class MSHP(ConditionalCodec):
    """Mean-scale hyperprior (Minnen, Ballé, Toderici, NeurIPS 2018), compressai ``mbt2018-mean``.

    Conditioned as in "Revisiting Associative Compression: I Can't Believe It's Not Better"
    (Xu et al., 2023): ``hyper_analysis`` mixes y_k with ŷ_{k-1} before h_a, ``hyper_synthesis``
    mixes ẑ_k with ẑ_{k-1} before h_s. Beyond the paper: ``latent_prior`` mixes the Gaussian
    parameters of y with features of ŷ_{k-1}; ``hyper_prior`` replaces the factorized prior of z
    by a Gaussian whose mean and scale come from ẑ_{k-1}.

    Args:
        N: channels of the hyper-latent z (and of g_a / g_s hidden layers).
        M: channels of the latent y.
    """

    version = "1"
    stride = 64
    supported_sites = ("hyper_analysis", "hyper_synthesis", "latent_prior", "hyper_prior")

    def __init__(self, N: int = 128, M: int = 192, **kw: Any) -> None:
        super().__init__(**kw)
        import compressai.models  # noqa: F401  (fills the registry)
        from compressai.registry import MODELS

        self.N, self.M = N, M
        self.base = MODELS["mbt2018-mean"](N=N, M=M)
        for site, ch in (
            ("hyper_analysis", M),
            ("hyper_synthesis", N),
            ("latent_prior", 2 * M),
            ("hyper_prior", 2 * N),
        ):
            if site in self.sites:
                self._mixer(site, ch)
        if "latent_prior" in self.sites:
            self.lp_proj = nn.Conv2d(M, 2 * M, 1)
        if "hyper_prior" in self.sites:
            self._add_hyper_prior(N)

    def arch(self) -> dict[str, Any]:
        return {
            "codec": "mshp",
            "params": {"N": self.N, "M": self.M},
            "sites": list(self.sites),
            "mixer": self.mixer_name,
            "mixer_params": self.mixer_params,
            "reference": self.reference,
        }

    # -- pieces ------------------------------------------------------------------------------
    def analyse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.base.g_a(x)
        return y, self.base.h_a(y)

    def _y_params(
        self, z_hat: torch.Tensor, ref: RefState | None, like: torch.Size
    ) -> tuple[torch.Tensor, torch.Tensor]:
        params = self.base.h_s(self._hyper_synthesis_in(z_hat, ref))
        if "latent_prior" in self.sites:
            feat = self.lp_proj(ref.y)
            params = self.mixers["latent_prior"](params, fit_spatial(feat, params))
        scales, means = params.chunk(2, 1)
        return scales, means

    def _medians(self) -> torch.Tensor:
        return self.base.entropy_bottleneck._get_medians().reshape(1, -1, 1, 1)

    # -- the contract -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, ref: RefState | None = None) -> dict[str, Any]:
        ref = self._ref(ref)
        b = self.base
        y = b.g_a(x)
        z = b.h_a(self._hyper_in(y, ref))
        if "hyper_prior" in self.sites:
            zsc, zmu = self._z_params(z, ref)
            z_tilde, z_lik = entropy_fp32(self.z_conditional, z, zsc, means=zmu)
            zmu = zmu.float()
            z_ref = ste_round(z.float() - zmu) + zmu
        else:
            z_tilde, z_lik = entropy_fp32(b.entropy_bottleneck, z)
            med = self._medians()
            z_ref = ste_round(z.float() - med) + med
        # the decoder's ẑ drives h_s at test time; noisy ẑ in training (compressai's convention)
        scales, means = self._y_params(z_tilde, ref, y.shape)
        y_tilde, y_lik = entropy_fp32(b.gaussian_conditional, y, scales, means=means)
        x_hat = b.g_s(y_tilde)
        means = means.float()
        y_ref = ste_round(y.float() - means) + means
        return {
            "x_hat": x_hat,
            "likelihoods": {"y": y_lik, "z": z_lik},
            "ref": RefState(y_ref, z_ref, x_hat),  # x_hat: for a consumer using reference="reconstruction"
        }

    @torch.no_grad()
    def compress(
        self, x: torch.Tensor, ref: RefState | None = None, need_x_hat: bool = False, streams: Streams = None
    ) -> dict[str, Any]:
        ref = self._ref(ref)
        b = self.base
        y = b.g_a(x)
        z = b.h_a(self._hyper_in(y, ref))
        if "hyper_prior" in self.sites:
            zsc, zmu = self._z_params(z, ref)
            zc = self.z_conditional
            z_strings = coder.compress(zc, z, coder.gaussian_indexes(zc, zsc), zmu, streams)
            z_hat = zc.quantize(z, "dequantize", zmu)
            _, z_lik = zc(z_hat, zsc, means=zmu)
        else:
            z_strings = coder.bottleneck_compress(b.entropy_bottleneck, z, streams)
            z_hat = coder.bottleneck_decompress(b.entropy_bottleneck, z_strings, tuple(z.shape[-2:]))
            _, z_lik = b.entropy_bottleneck(z, training=False)
        scales, means = self._y_params(z_hat, ref, y.shape)
        gc = b.gaussian_conditional
        y_strings = coder.compress(gc, y, coder.gaussian_indexes(gc, scales), means, streams)
        y_hat = gc.quantize(y, "dequantize", means)
        _, y_lik = gc(y_hat, scales, means=means)
        x_hat = b.g_s(y_hat).clamp_(0, 1) if (need_x_hat or self.reference == "reconstruction") else None
        return {
            "strings": {"y": y_strings, "z": z_strings},
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
        b = self.base
        zs, ys = (None, None) if streams is not None else (strings["z"], strings["y"])
        if "hyper_prior" in self.sites:
            n = len(streams) if streams is not None else len(zs)
            dummy = torch.zeros(n, self.N, *shape, device=self.z_prior.device)
            zsc, zmu = self._z_params(dummy, ref)
            zc = self.z_conditional
            z_hat = coder.decompress(zc, zs, coder.gaussian_indexes(zc, zsc), zmu, streams)
        else:
            z_hat = coder.bottleneck_decompress(b.entropy_bottleneck, zs, tuple(shape), streams)
        scales, means = self._y_params(z_hat, ref, None)
        gc = b.gaussian_conditional
        y_hat = coder.decompress(gc, ys, coder.gaussian_indexes(gc, scales), means, streams)
        x_hat = b.g_s(y_hat).clamp_(0, 1)
        return {"x_hat": x_hat, "ref": RefState(y_hat, z_hat, x_hat)}

    def aux_loss(self) -> torch.Tensor:
        return self.base.aux_loss()

    def update(self, force: bool = True) -> None:
        from compressai.models.base import CompressionModel

        CompressionModel.update(self, force=True)  # walks every entropy model, mixers' included
