"""JPEG decoding and augmentation on the model's device: the loader workers only read file bytes.

On a GPU the model is cheap and PIL decoding in the workers is not (a few CPU cores decode a few hundred images/s
against thousands the GPU computes). With ``decode="device"`` a worker reads a JPEG's bytes, checks that they can
be decoded as they are, and hands them on; the main process decodes the whole batch at once with
``torchvision.io.decode_jpeg`` on the device (nvJPEG on CUDA, libjpeg-turbo on the CPU), then crops, resizes,
augments and normalises there. Files that cannot take that path go the PIL way file by file, in the worker, with
the same bad-file reporting as ``DeepfakeDataset``: other formats (PNG, WebP...), CMYK or YCCK JPEGs, JPEGs with an
EXIF rotation, truncated files, files over the pixel limit, and any file the device decoder refuses.

Training batches get the same recipe as on the CPU (``augment.augmentation``) with one change of order: JPEG
re-compression runs first, in the worker (the device has no encoder), and the rest of the recipe runs on the
device, one draw per image. ``decode="auto"`` is the PIL path everywhere until the device path has run on a real GPU
(``DEVICE_DECODE_ON_CUDA``; ``benchmarks/gpu/check.sh`` is that run: the CUDA tests, the bench's GPU rows and a
training with each decoding at one seed). On the CPU the PIL path keeps outputs exactly what they were (the device
path's pixels are within one 8-bit step of PIL's; on a 2-core CPU it was also 1.1-1.8x faster, so
``decode="device"`` is worth choosing there too).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.v2 import functional as F

from deepfake_lib.core.choices import DECODE_MODES
from deepfake_lib.core.files import is_clip_dir
from deepfake_lib.core.images import MAX_IMAGE_PIXELS, ImageLoadError, load_image, resize_center_crop
from deepfake_lib.data.augment import device_augmentation
from deepfake_lib.data.scan import Sample
from deepfake_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)

MAX_ASPECT = 4.0  # as ``transforms.LimitAspect``
_SOI, _EOI = b"\xff\xd8\xff", b"\xff\xd9"
EXIF_ORIENTATION = 0x0112
# Whether "auto" decodes on a CUDA device. False until benchmarks/gpu/check.sh has shown, on a real GPU, that both
# decodings train to the same AUC within noise and the device path is faster (docs/performance.md has the rows).
DEVICE_DECODE_ON_CUDA = False


def check_decode(decode: str) -> str:
    """``decode`` when it is one of ``DECODE_MODES``, else ``ValueError``."""
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
    return decode


def resolve_decode(decode: str, device: torch.device | str) -> str:
    """ "pil" or "device": ``decode`` as given, or for "auto" "pil" (and "device" on CUDA once
    ``DEVICE_DECODE_ON_CUDA`` says the device path has been checked on a GPU)."""
    decode = check_decode(decode)
    if decode != "auto":
        return decode
    return "device" if DEVICE_DECODE_ON_CUDA and torch.device(device).type == "cuda" else "pil"


def jpeg_bytes(path: str | Any) -> bytes | None:
    """The file's bytes when it is a JPEG the device decoder takes as it is (baseline or progressive, gray or
    colour, no EXIF rotation, complete, within the pixel limit); None for every other file (decode it with PIL)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if not data.startswith(_SOI) or not data.rstrip(b"\x00\r\n ").endswith(_EOI):
        return None  # not a JPEG, or truncated: PIL says which
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:  # the header only
                if img.format != "JPEG" or img.mode not in ("L", "RGB"):
                    return None
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    return None
                if img.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1):
                    return None
    except Exception:
        return None
    return data


class EncodedImages(Dataset):
    """The image samples of a dataset as the device decoder wants them.

    Item: ``{"bytes": uint8 [N], "y", "path"}`` for a JPEG to decode on the device, ``{"pixels": uint8 [3, S, S],
    "y", "path"}`` for a file decoded here with PIL (resized and centre-cropped to ``image_size`` as the eval
    transform does, then JPEG re-compressed when drawn), or ``{"error": (path, reason)}``. ``jpeg``: the recipe's
    JPEG re-compression ``(probability, (low, high) quality)``, applied here; None = never."""

    def __init__(
        self, samples: Sequence[Sample], image_size: int, jpeg: tuple[float, tuple[int, int]] | None = None
    ) -> None:
        self.samples = list(samples)
        self.image_size = int(image_size)
        self.jpeg = jpeg

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        quality = self._draw_quality()
        if quality is None:
            data = jpeg_bytes(sample.path)
            if data is not None:
                return {"bytes": torch.frombuffer(bytearray(data), dtype=torch.uint8), "y": sample.label,
                        "path": str(sample.path)}  # fmt: skip
        try:
            pixels = pil_pixels(sample.path, self.image_size)
        except ImageLoadError as exc:
            log.warning("skipping %s: %s", exc.path, exc.reason)
            return {"error": (str(exc.path), exc.reason)}
        if quality is not None:
            pixels = F.jpeg(pixels, quality)
        return {"pixels": pixels, "y": sample.label, "path": str(sample.path)}

    def _draw_quality(self) -> int | None:
        """The JPEG quality to re-compress this item at, or None (one draw per item, always made)."""
        if self.jpeg is None:
            return None
        p, (low, high) = self.jpeg
        apply = float(torch.rand(())) < p
        quality = int(torch.randint(low, high + 1, ()))
        return quality if apply else None


def pil_pixels(path: Any, image_size: int) -> torch.Tensor:
    """``path`` decoded with PIL (``load_image``: EXIF, any mode) in the eval geometry: uint8 ``[3, S, S]``."""
    img = resize_center_crop(load_image(path), image_size, MAX_ASPECT)
    return F.pil_to_tensor(img)


def collate_encoded(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Keep the items as they are (sizes differ): ``{"items": [(kind, uint8 tensor)], "y" [B], "path", "bad"}``."""
    good = [it for it in items if "error" not in it]
    return {
        "items": [("bytes", it["bytes"]) if "bytes" in it else ("pixels", it["pixels"]) for it in good],
        "y": torch.tensor([it["y"] for it in good], dtype=torch.long),
        "path": [it["path"] for it in good],
        "bad": [it["error"] for it in items if "error" in it],
    }


class DeviceDecoder:
    """A ``collate_encoded`` batch -> a ``collate_skip_bad`` batch with ``x [B, 1, 3, S, S]`` (normalised) on
    ``device``: JPEG bytes decoded together, cropped and resized there, then ``augment`` per image (the device
    steps of ``augment.device_augmentation``: uint8 ``[3, S, S]`` -> float in [0, 1]; None = no augmentation)."""

    def __init__(self, image_size: int, device: torch.device | str, augment: Any = None) -> None:
        self.image_size = int(image_size)
        self.device = torch.device(device)
        self.augment = augment
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        items, paths, bad = batch["items"], list(batch["path"]), list(batch["bad"])
        pixels = self.pixels(items, paths)
        keep = [i for i, p in enumerate(pixels) if not isinstance(p, str)]
        bad += [(paths[i], pixels[i]) for i in range(len(pixels)) if isinstance(pixels[i], str)]
        if not keep:
            return {"x": None, "y": None, "path": [], "bad": bad}
        images = [pixels[i] for i in keep]
        if self.augment is not None:
            images = [self.augment(img) for img in images]  # one draw per image
        else:
            images = [F.to_dtype(img, torch.float32, scale=True) for img in images]
        x = (torch.stack(images) - self.mean) / self.std
        return {"x": x.unsqueeze(1), "y": batch["y"][keep], "path": [paths[i] for i in keep], "bad": bad}

    def pixels(self, items: Sequence[tuple[str, torch.Tensor]], paths: Sequence[str]) -> list[torch.Tensor | str]:
        """Each item as uint8 ``[3, S, S]`` on the device, or the reason its file cannot be used."""
        out: list[torch.Tensor | str | None] = [None] * len(items)
        jpegs = [i for i, (kind, _) in enumerate(items) if kind == "bytes"]
        for i, (kind, data) in enumerate(items):
            if kind == "pixels":
                out[i] = data.to(self.device, non_blocking=True)
        for i, image in zip(jpegs, self._decode([items[i][1] for i in jpegs]), strict=True):
            if image is None:  # the device decoder refused it: PIL, as every other file
                try:
                    out[i] = pil_pixels(paths[i], self.image_size).to(self.device)
                except ImageLoadError as exc:
                    out[i] = exc.reason
            else:
                out[i] = self._geometry(image)
        return out  # type: ignore[return-value]

    def _decode(self, datas: list[torch.Tensor]) -> list[torch.Tensor | None]:
        """Decode JPEG bytes together on the device (RGB uint8 ``[3, H, W]`` each); one by one when the batch
        fails, None for each file the decoder refuses."""
        if not datas:
            return []
        try:
            return list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=self.device))
        except RuntimeError:
            pass
        out: list[torch.Tensor | None] = []
        for data in datas:
            try:
                out.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device))
            except RuntimeError:
                out.append(None)
        return out

    def _geometry(self, image: torch.Tensor) -> torch.Tensor:
        """The eval geometry of ``images.resize_center_crop`` on a uint8 ``[3, H, W]`` tensor: at most 4:1, the
        short side resized to S (bilinear, antialiased; left alone when it is S already), centre crop S x S."""
        h, w = image.shape[-2:]
        limit = max(1, int(min(h, w) * MAX_ASPECT))
        if w > limit:
            left = (w - limit) // 2
            image = image[..., left : left + limit]
        elif h > limit:
            top = (h - limit) // 2
            image = image[..., top : top + limit, :]
        if min(image.shape[-2:]) != self.image_size:
            image = F.resize(image, [self.image_size], antialias=True)
        return F.center_crop(image, [self.image_size, self.image_size])


class DeviceBatches:
    """A DataLoader of ``EncodedImages`` whose batches come out decoded on the device (``DeviceDecoder``)."""

    def __init__(self, loader: torch.utils.data.DataLoader, decoder: DeviceDecoder) -> None:
        self.loader, self.decoder = loader, decoder

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.loader:
            yield self.decoder(batch)


def takes_device_decoding(dataset: Any) -> bool:
    """Whether ``dataset`` can be read through ``EncodedImages``: a plain ``DeepfakeDataset`` of image files (no
    clip folders, no pseudo-fakes) whose transform is one ``transforms.build_transform`` made."""
    from deepfake_lib.data.datasets import DeepfakeDataset

    transform = getattr(dataset, "transform", None)
    return (
        type(dataset) is DeepfakeDataset
        and getattr(transform, "recipe", None) is not None
        and not any(is_clip_dir(s.path) for s in dataset.samples)
    )


def loader_for(
    dataset: Any, batch_size: int, device: torch.device | str, decode: str = "auto", **loader_kw: Any
) -> Any:
    """``datasets.make_loader(dataset, ...)``, or with ``decode`` resolving to "device" for a dataset that takes
    it (``takes_device_decoding``) the same batches decoded and augmented on ``device`` (``DeviceBatches``)."""
    from deepfake_lib.data.datasets import make_loader

    if resolve_decode(decode, device) == "pil" or not takes_device_decoding(dataset):
        return make_loader(dataset, batch_size, **loader_kw)
    size = dataset.transform.image_size
    steps, jpeg = device_augmentation(dataset.transform.recipe, size)
    loader = make_loader(
        EncodedImages(dataset.samples, size, jpeg), batch_size, collate_fn=collate_encoded, **loader_kw
    )
    return DeviceBatches(loader, DeviceDecoder(size, device, steps))
