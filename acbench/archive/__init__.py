"""Dataset archives: ``acbench compress`` / ``decompress`` / ``info``.

A folder of images is ordered with a conditional run's ordering, cut into chains of the run's
chain length, and coded with real entropy coding: position 1 of each chain by the run's baseline
(``first.pt`` for ``joint`` runs, else the baseline run's ``model.pt``), later positions by the
conditional codec given the decoded state of the previous image. Every chain is one rANS
stream (compressai's rANS coder: each image's z, then y, appended; one flush per
chain), so the coder's flush — several bytes, 4–6 % of a ~140-byte image — is paid once per
chain instead of twice per image. The result is one file.

File layout (integers little-endian)::

    magic      8 bytes   b"\x89ACB\r\n\x1a\n"   (PNG-style: catches text-mode mangling)
    version    u16       format version (3); a reader refuses any other in one line (1: per-image
                         streams; 2: a JSON header with names in chain order, two crc32 per chain)
    flags      u16       reserved, 0
    hlen       u64       length of the header
    header     hlen      zlib(meta JSON, chain lengths, names), then stream lengths, checksums,
                         the chain order and (trees) the parents as they are
                         (:mod:`acbench.archive.layout`)
    digest     32 bytes  sha256 of everything before it (magic .. header)
    payload              embedded checkpoints (optional), then every chain's stream

The header's size counts in the file's bpp, so what grows with the number of images is packed
(:mod:`acbench.archive.layout`): the item table is in sorted-name order, names stored once,
front-coded and without their ``.png``; the chains are a permutation of that table (its Lehmer
code in ⌈log2 N!⌉ bits up to N = 536, within 0.2 % of it beyond) — the permutation *is* the
ordering information, the names are what a user gets back; per chain a varint stream length and
the stream's crc32. The JSON part holds what does not grow with N: the model identity (run id,
and per checkpoint its run id, file name, size, the first 64 bits of its sha256 and, with
``embed_model``, where its bytes lie in the payload), the coder's platform (acbench, torch,
compressai, CPU type), the ordering used (informational: the decoder needs only the chains), the
crc32 of the encoder's 8-bit reconstructions (one for the archive), totals for ``info``
(estimated bits, PSNR, what per-image streams would have taken, and the baseline-alone estimate
and real sizes), and one column per item field (original name, PIL mode, width, height), stored
as one value when every item has it; the original name is stored only as the suffix that
differs, the z grid only when it is not the padded size over the stride. On the photos' eval
split (156 tiles, 39 chains) that is 7.5 bytes an image (format 2: 11.0); ``python
benchmarks/bench_archive.py --sizes-only`` prints the parts.

Decisions, and why:

- **Bit-exactness.** CPU convolutions give slightly different floats for different batch sizes
  and for different intra-op thread counts (measured here: x̂ differs by ~1e-8 between 1 and 2
  threads), and a decoder whose entropy parameters differ from the encoder's can pick another
  scale-table index and decode garbage. So both sides code each chain image by image (batch 1)
  with ``torch.set_num_threads(1)``; parallelism comes from coding chains in separate processes
  (``jobs``; a fork server imports torch once, where the platform has one, else ``spawn``), which
  changes nothing in the bytes: an archive is identical for any ``jobs``. The
  crc32 of the encoder's reconstruction lets the decoder *detect* drift (another CPU type or
  torch version: the header records both) instead of silently writing wrong pixels. It is one
  crc32 for the archive (over the chains' own, in chain order), not one per chain: drift is a
  property of the decoding machine, so naming the chain it shows in would change nothing the
  user does, and per chain it cost 4 bytes (1 an image at chains of 4); what it cannot do is
  check a decode in which some chains were lost (``skip_corrupt``), which the summary says.
- **One stream per chain.** rANS is last-in first-out: the encoder keeps the
  chain's symbols and codes them backwards on ``flush``, so the decoder reads them forwards,
  image after image — decoding stays streaming (image k is written before k+1 is read) and a
  chain decodes without the others. The encoder holds one chain's symbols in memory (8 bytes
  per latent element, twice that while flushing). A chain's images are not separable in its stream: ``info``
  reports bytes per chain, and the flush per image against what per-image streams took.
- **Streaming.** Each chain is coded into its own temporary file (memory: the models plus one
  chain per process); the header (which needs every length) is written first, then the chain
  files are appended, and the archive is moved into place atomically (disk: twice the archive,
  briefly). The header comes first so that a truncated archive still says what it held and its
  complete chains can be restored. Per-item metadata (about a hundred bytes each) stays in memory.
- **Checksums.** crc32 per chain stream (corruption, not tampering: an attacker rewrites both),
  checked before anything is decoded; sha256 over the header; per checkpoint the first 64 bits
  of its sha256 (identity: it tells a retrained or another run's checkpoint, and a damaged
  embedded copy, from the right one with a miss chance of 2^-64 — it guards against mistakes,
  not forgers, who can write any archive; checkpoints are loaded ``weights_only`` whatever their
  hash, and decoded pixels are checked). A truncated, bit-flipped or
  misplaced (e.g. two chains' streams swapped) stream fails its chain's crc32 and loses the
  whole chain (every image is decoded from its predecessor's state, out of one stream);
  ``skip_corrupt`` restores all other chains and names the lost images with the reason. An
  embedded checkpoint whose hash does not match is reported as damaged (the identical file on
  disk is used if there is one). Bytes after the archive's end (an append, a concatenation) are
  ignored with a warning giving their count: they belong to no chain.
- **Lossy.** What decompressing restores is the codec's reconstruction, not the original pixels
  (bit-exact with the encoder's, as the reconstruction checksum verifies); ``compress`` reports the
  PSNR of every image against its original (mean and lowest), ``info`` the mean recorded then.
- **Untrusted archives.** Every name is checked before anything is written: relative POSIX paths
  only (no ``..``, no absolute path, no backslash or drive), the target resolved inside the
  output folder (a symlinked sub-folder pointing elsewhere is refused), an existing symlink at
  the target is refused, and files are written to a temporary name and ``os.replace``-d.
  Checkpoints (from disk or embedded) are hashed, then loaded from those same bytes with
  ``torch.load(weights_only=True)``, so a pickle that would run code is refused, not executed.
- **Images.** Any size and any PIL mode: converted with :func:`to_rgb_uint8` after applying the
  EXIF orientation (PNG keeps no orientation tag); alpha is dropped, animations give their
  first frame; greyscale and palette images are coded (and restored) as RGB — the header keeps
  the original mode. Sizes are padded to the codec stride (:func:`pad_to`) and cropped back.
  ``jobs`` processes never see more than one chain each. Output is always PNG: ``a/b.jpg`` →
  ``a/b.png``; when two inputs would land on one name (``b.jpg`` and ``b.png``, or names that
  differ only in case), an existing ``.png`` keeps its name and the other becomes ``b.jpg.png``.
- **Ordering.** The images are embedded with the first-image codec (the run's ``features``:
  ``hyper``, ``y`` or ``pixels``). When they all share one size of at most 512×512 px they are
  embedded as they are; otherwise every image's centre square is resized to the run's tile size
  (≥ the stride), so features have one dimension and large photos cost little; the features
  come from a baseline forward pass in batches (they need no bit-exactness). The run's ordering
  type is then fitted with the run's parameters (``random_state`` = the run's seed) on these
  features, with the class folder as label as the folder dataset finds it (the top-level
  sub-folder, or the one below split folders such as ``train/``, ``val/``). The fitted order is cut
  into chains of the run's ``chain`` length. If the ordering cannot be fitted (e.g. fewer images
  than its neighbourhood size), the name order is used and the summary says so.
- **Trees.** A run with ``structure = "tree"`` codes the minimum spanning forest of the features
  rooted by the fitted order (:mod:`acbench.orderings.tree`), cut at depth ``chain`` as its
  evaluation does; each tree is one unit (its items stored in breadth-first order, decodable
  without the others), each item conditioned on its parent's decoded state. The chain lengths
  are then the trees' sizes, the permutation their items' order, the JSON part says
  ``"structure": "tree"``, and after the chain order come the parents: every non-root's parent
  index within its tree, ⌈log2 S⌉ bits for a tree of S items, packed most significant bit first
  into whole bytes (raw, like the other tables: they count in the file's bpp; ``info`` gives the
  bit count). A parent that is not decoded before its child is refused as malformed. Each tree
  is one rANS stream, as a chain is: a corrupt stream loses its tree.

The package, by part: ``format`` (constants, header helpers), ``layout`` (the header's bytes),
``models``, ``images``, ``names``,
``coding`` (one chain, shared by the in-process path and worker processes), ``compress``,
``read``, ``decompress``, ``info``. Every public name is importable from here.
"""

from __future__ import annotations

from acbench.archive.coding import decode_chain, encode_chain  # noqa: F401 - also imported from here
from acbench.archive.compress import compress_folder
from acbench.archive.decompress import decompress_archive
from acbench.archive.format import _PREFIX, FORMAT_VERSION, MAGIC, ArchiveError  # noqa: F401 - also imported from here
from acbench.archive.images import _chw, _to_uint8, output_names, read_image, scan  # noqa: F401 - also imported from here
from acbench.archive.info import archive_info, format_info, format_restored
from acbench.archive.models import open_run
from acbench.archive.names import check_name
from acbench.archive.read import read_header

__all__ = [
    "ArchiveError",
    "FORMAT_VERSION",
    "MAGIC",
    "archive_info",
    "check_name",
    "compress_folder",
    "decompress_archive",
    "format_info",
    "format_restored",
    "open_run",
    "output_names",
    "read_header",
    "scan",
]
