"""Image files in, predictions out: the digits models on PNG/JPEG files of any size and colour mode.

    python examples/images/run.py [--keep DIR]

Writes the 360 held-out sklearn digits (the split examples/digits/train.py trained on) as image
files the way a user would have them — dark ink on light paper, sizes 8x8 to 96x72, grayscale and
RGB (coloured ink and paper), PNG and JPEG — then packs the digits models with the image
preprocessing recorded in the blob (`edgeq pack --preprocess`) and classifies the files with
`edgeq run BLOB --input DIR --json` on this host's C runtime. Prints accuracy and blob size per model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

MODELS = Path(__file__).resolve().parents[1] / "digits" / "models"
# The digits were made by averaging 4x4 blocks of 32x32 bitmaps, ink high: so box resize, invert, 0..1.
PREPROCESS = "size=8x8,mode=L,resize=box,invert=1,scale=1/255"
SIZES = [(8, 8), (16, 16), (32, 32), (24, 24), (64, 64), (40, 40), (96, 72), (20, 28)]
INKS = [((0, 0, 0), (255, 255, 255)), ((20, 30, 120), (250, 245, 230)), ((90, 10, 10), (235, 240, 255))]


def test_digits() -> tuple[np.ndarray, np.ndarray]:
    """The held-out split of examples/digits/train.py: 8x8 images with values 0..16 (ink high)."""
    digits = load_digits()
    _, x_test, _, y_test = train_test_split(digits.images, digits.target, test_size=0.2, random_state=0,
                                            stratify=digits.target)
    return x_test, y_test


def write_images(out: Path, images: np.ndarray, labels: np.ndarray) -> list[Path]:
    """One file per digit, cycling through sizes, colour modes and PNG/JPEG."""
    files = []
    for i, (img, label) in enumerate(zip(images, labels)):
        paper = np.round(255 - img * 255 / 16).astype(np.uint8)  # dark ink on white paper
        w, h = SIZES[i % len(SIZES)]
        gray = Image.fromarray(paper, "L").resize((w, h), Image.Resampling.NEAREST)
        if i % 3 == 0:
            im = gray
        else:  # coloured ink on tinted paper: mix the two colours by the ink amount
            ink, background = (np.array(c, np.float32) for c in INKS[i % len(INKS)])
            t = (255 - np.asarray(gray, np.float32))[..., None] / 255
            im = Image.fromarray(np.round(background * (1 - t) + ink * t).astype(np.uint8), "RGB")
        ext = "jpg" if i % 4 == 3 else "png"
        path = out / f"{i:03d}_label{label}_{w}x{h}_{im.mode}.{ext}"
        im.save(path, quality=95) if ext == "jpg" else im.save(path)
        files.append(path)
    return files


def edgeq(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "edgeq.cli", *args], check=False, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"edgeq {' '.join(args)} failed:\n{res.stderr}")
    return res.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="write the images and blobs here instead of a temp directory")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        images = work / "images"
        images.mkdir(parents=True, exist_ok=True)
        x, y = test_digits()
        files = write_images(images, x, y)
        modes = {m: sum(f.stem.endswith(m) for f in files) for m in ("L", "RGB")}
        print(f"wrote {len(files)} images to {images}: {modes['L']} grayscale, {modes['RGB']} RGB, "
              f"{sum(f.suffix == '.jpg' for f in files)} JPEG, sizes {', '.join(f'{w}x{h}' for w, h in SIZES)}")
        for stem in ("mlp_t2_qat", "cnn_t2_qat"):
            blob = work / f"{stem}.edgeq"
            kind = stem.split("_")[0]
            edgeq("pack", str(MODELS / f"{stem}.pt2"), "-f", "t2", "--calib", str(MODELS / f"{kind}_data.npz"),
                  "--preprocess", PREPROCESS, "-o", str(blob))
            result = json.loads(edgeq("run", str(blob), "--input", str(images), "--json"))
            truth = [int(Path(f).stem.split("_label")[1].split("_")[0]) for f in result["inputs"]]
            acc = float(np.mean(np.array(result["top1"]) == np.array(truth)))
            print(f"{stem}: accuracy {100 * acc:.2f}% on {len(truth)} image files (C runtime), "
                  f"blob {blob.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
