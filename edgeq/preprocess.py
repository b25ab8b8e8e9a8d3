"""Image preprocessing recorded in the blob (metadata "preprocess") and applied with pillow.

The blob carries how its training images were made, so `edgeq run BLOB --input photo.jpg` and
`edgeq deploy --input DIR` turn any PNG/JPEG (any size, RGB or grayscale) into exactly the tensor
the model was trained on: EXIF orientation -> colour mode -> resize -> invert -> scale/normalise ->
the graph input's layout. docs/images.md describes every key.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from edgeq.errors import EdgeqError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
RESIZE = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
MODES = {"L": 1, "RGB": 3}
KEYS = ("size", "mode", "resize", "invert", "scale", "mean", "std")


def _number(text: str, key: str) -> float:
    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise EdgeqError(f"--preprocess {key}: expected a number or a fraction like 1/255, got {text!r}") from None


def parse_spec(spec: str) -> dict:
    """`size=8x8,mode=L,resize=box,invert=1,scale=1/255,mean=0.5,std=0.5` (or a .json file) -> dict.

    Per-channel mean/std are separated by colons: `mean=0.485:0.456:0.406`."""
    if spec.endswith(".json"):
        try:
            raw = json.loads(Path(spec).read_text())
        except (OSError, ValueError) as e:
            raise EdgeqError(f"{spec}: cannot read preprocessing ({e})") from None
        if not isinstance(raw, dict):
            raise EdgeqError(f"{spec}: preprocessing must be a JSON object")
        return raw
    out: dict = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise EdgeqError(f"--preprocess: expected key=value, got {item!r} (keys: {', '.join(KEYS)})")
        if key == "size":
            try:
                w, h = (int(v) for v in value.lower().split("x"))
            except ValueError:
                raise EdgeqError(f"--preprocess size: expected WxH like 8x8, got {value!r}") from None
            out["size"] = [w, h]
        elif key in ("mode", "resize"):
            out[key] = value.upper() if key == "mode" else value.lower()
        elif key == "invert":
            out["invert"] = value.lower() in ("1", "true", "yes")
        elif key == "scale":
            out[key] = _number(value, key)
        elif key in ("mean", "std"):
            out[key] = [_number(v, key) for v in value.split(":")]
        else:
            raise EdgeqError(f"--preprocess: unknown key {key!r} (keys: {', '.join(KEYS)})")
    return out


def complete(spec: dict, input_shape: tuple[int, ...]) -> dict:
    """Fills defaults from the graph input shape and checks the result, so the blob holds a full recipe."""
    unknown = sorted(set(spec) - set(KEYS) - {"layout"})
    if unknown:
        raise EdgeqError(f"preprocess: unknown key(s) {', '.join(unknown)} (keys: {', '.join(KEYS)})")
    p = {"resize": "bilinear", "invert": False, "scale": 1 / 255, "mean": [0.0], "std": [1.0], **spec}
    if len(input_shape) == 4:
        _, h, w, c = input_shape
        p.setdefault("size", [w, h])
        p.setdefault("mode", {1: "L", 3: "RGB"}.get(c, ""))
        p["layout"] = "NHWC"
        if list(p["size"]) != [w, h] or MODES.get(p["mode"]) != c:
            raise EdgeqError(f"preprocess: size {p['size']} mode {p.get('mode')} do not give the model input "
                             f"{h}x{w}x{c} (NHWC)")
    elif len(input_shape) == 2:
        if "size" not in p:
            raise EdgeqError("preprocess: the model takes flat vectors; give size=WxH (and mode) for its images")
        p.setdefault("mode", "L")
        p["layout"] = "flatten-HWC"
        if p["mode"] in MODES and p["size"][0] * p["size"][1] * MODES[p["mode"]] != input_shape[1]:
            raise EdgeqError(f"preprocess: {p['size'][0]}x{p['size'][1]} {p['mode']} images flatten to "
                             f"{p['size'][0] * p['size'][1] * MODES[p['mode']]} values, the model takes {input_shape[1]}")
    else:
        raise EdgeqError(f"preprocess: images need an NHWC or flat model input, this one is {list(input_shape)}")
    if p["mode"] not in MODES:
        raise EdgeqError(f"preprocess mode: expected L (grayscale) or RGB, got {p['mode']!r}")
    if p["resize"] not in RESIZE:
        raise EdgeqError(f"preprocess resize: expected one of {', '.join(RESIZE)}, got {p['resize']!r}")
    channels = MODES[p["mode"]]
    for key in ("mean", "std"):
        if len(p[key]) not in (1, channels):
            raise EdgeqError(f"preprocess {key}: give 1 or {channels} values, got {len(p[key])}")
    if any(s == 0 for s in p["std"]):
        raise EdgeqError("preprocess std: must not be 0")
    p["size"] = [int(v) for v in p["size"]]
    return p


def load_image(path: Path, p: dict) -> np.ndarray:
    """One image file -> float32 array in the model's input layout (without the batch axis)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))  # transparent = white paper
                im = Image.alpha_composite(background, im.convert("RGBA"))
            im = im.convert(p["mode"])
            im = im.resize(tuple(p["size"]), getattr(Image.Resampling, p["resize"].upper()))
            a = np.asarray(im, np.float32)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise EdgeqError(f"{path}: cannot read image ({e})") from None
    if a.ndim == 2:
        a = a[:, :, None]
    if p["invert"]:
        a = 255.0 - a
    a = (a * np.float32(p["scale"]) - np.asarray(p["mean"], np.float32)) / np.asarray(p["std"], np.float32)
    return a.reshape(-1) if p["layout"] == "flatten-HWC" else a


def image_files(path: Path) -> list[Path]:
    """The images of a directory (sorted by name), or the file itself."""
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EdgeqError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)})")
        return files
    if not path.exists():
        raise EdgeqError(f"{path}: no such file")
    return [path]


def load_images(files: list[Path], metadata: dict, blob_name: str = "the blob") -> np.ndarray:
    """Images -> one float32 batch, preprocessed as the blob's metadata says."""
    p = metadata.get("preprocess")
    if not p:
        raise EdgeqError(f"{blob_name} records no image preprocessing: pack it with --preprocess "
                         "(e.g. size=8x8,mode=L,resize=box,invert=1,scale=1/255) or give a .npy input")
    return np.stack([load_image(f, p) for f in files]).astype(np.float32)
