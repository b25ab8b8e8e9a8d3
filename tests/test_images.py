"""The image path: preprocessing recorded at pack time, applied with pillow by `edgeq run` and
`edgeq deploy --input DIR`; and `edgeq run` agreeing with the numpy reference executor on the digits."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DIGITS_MODELS, ROOT
from PIL import Image

from edgeq import reference
from edgeq.blob import read_blob
from edgeq.cli import main
from edgeq.cli_pack import to_nhwc
from edgeq.errors import EdgeqError
from edgeq.preprocess import complete, load_image, parse_spec

SPEC = "size=8x8,mode=L,resize=box,invert=1,scale=1/255"
_spec = importlib.util.spec_from_file_location("images_example", ROOT / "examples" / "images" / "run.py")
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)


def cli(*args: str):
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """mlp and cnn T2 blobs packed with image preprocessing, and 40 test digits as image files."""
    tmp = tmp_path_factory.mktemp("images")
    out = {}
    for kind in ("mlp", "cnn"):
        out[kind] = tmp / f"{kind}.edgeq"
        cli("pack", str(DIGITS_MODELS / f"{kind}_t2_qat.pt2"), "-f", "t2", "--calib",
            str(DIGITS_MODELS / f"{kind}_data.npz"), "--tests", "4", "--preprocess", SPEC, "-o", str(out[kind]))
    x, y = example.test_digits()
    (tmp / "img").mkdir()
    files = example.write_images(tmp / "img", x[:40], y[:40])
    return out, tmp / "img", files, x[:40], y[:40]


def test_spec_is_recorded_complete_in_the_blob(blobs):
    out, *_ = blobs
    p = read_blob(out["cnn"]).graph.metadata["preprocess"]
    assert p == {"size": [8, 8], "mode": "L", "resize": "box", "invert": True, "scale": pytest.approx(1 / 255),
                 "mean": [0.0], "std": [1.0], "layout": "NHWC"}
    assert read_blob(out["mlp"]).graph.metadata["preprocess"]["layout"] == "flatten-HWC"


def test_images_of_any_size_and_mode_give_the_digit_values(blobs):
    """Every generated file (8x8..96x72, L and RGB, PNG and JPEG) comes back as the 8x8 digit it was made from:
    exactly (to 1/2 grey level) for grayscale PNGs scaled by whole factors (box resize undoes a nearest
    upscale), within JPEG, aliasing and ink/paper-colour error otherwise."""
    out, _, files, x, _ = blobs
    p = read_blob(out["cnn"]).graph.metadata["preprocess"]
    modes = set()
    for f, digit in zip(files, x):
        got = load_image(f, p)
        assert got.shape == (8, 8, 1)
        err = np.abs(got[:, :, 0] - digit / 16)
        with Image.open(f) as im:
            modes.add((im.mode, im.size, f.suffix))
            exact = im.mode == "L" and f.suffix == ".png" and im.size[0] % 8 == 0 and im.size[1] % 8 == 0
        if exact:
            assert err.max() <= 0.5 / 255 + 1e-6, f.name
        else:
            assert err.mean() <= 0.12, (f.name, err.mean())
    assert {m for m, _, _ in modes} == {"L", "RGB"} and {s for _, _, s in modes} == {".png", ".jpg"}
    assert len({s for _, s, _ in modes}) == len(example.SIZES)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_run_on_images_equals_the_reference_executor(blobs, kind):
    out, img_dir, files, _, y = blobs
    g = read_blob(out[kind]).graph
    res = json.loads(cli("run", str(out[kind]), "--input", str(img_dir), "--json"))
    x = np.stack([load_image(f, g.metadata["preprocess"]) for f in files])
    assert res["inputs"] == [str(f) for f in files]
    assert res["top1"] == reference.run(g, [x])[0].argmax(1).tolist()
    assert np.mean(np.array(res["top1"]) == y) >= 0.9
    single = json.loads(cli("run", str(out[kind]), "--input", str(files[5]), "--json"))
    assert single["top1"] == [res["top1"][5]]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_digits_run_npy_identical_to_reference(blobs, tmp_path, kind):
    """The digits examples: `edgeq run` (C runtime) and the numpy reference agree on all 360 held-out inputs."""
    out, *_ = blobs
    g = read_blob(out[kind]).graph
    data = np.load(DIGITS_MODELS / f"{kind}_data.npz")
    np.save(tmp_path / "x.npy", data["x_test"])
    res = json.loads(cli("run", str(out[kind]), "--input", str(tmp_path / "x.npy"), "--json"))
    shape = g.tensors[g.inputs[0]].shape
    x = to_nhwc(data["x_test"], shape) if len(shape) == 4 else data["x_test"]
    assert len(res["top1"]) == 360
    assert res["top1"] == reference.run(g, [x])[0].argmax(1).tolist()


def test_deploy_reports_per_image_predictions(blobs):
    out, _, files, _, _ = blobs
    res = CliRunner().invoke(main, ["deploy", "--target", "rpi5", str(out["cnn"]), "--input", str(files[3]),
                                    "--runs", "1", "--warmup", "0", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    (p,) = report["predictions"]
    assert p["input"] == files[3].name and p["top1"] == p["reference_top1"]
    assert report["accuracy"]["n"] == 1 and report["accuracy"]["passed"]


def test_errors_are_clear(blobs, tmp_path):
    out, _, files, _, _ = blobs
    plain = tmp_path / "plain.edgeq"
    cli("pack", str(DIGITS_MODELS / "cnn_t2_qat.pt2"), "--calib", str(DIGITS_MODELS / "cnn_data.npz"),
        "--tests", "0", "-o", str(plain))
    res = CliRunner().invoke(main, ["run", str(plain), "--input", str(files[0])])
    assert res.exit_code != 0 and "records no image preprocessing" in res.output
    (tmp_path / "bad.png").write_bytes(b"not a png")
    res = CliRunner().invoke(main, ["run", str(out["cnn"]), "--input", str(tmp_path / "bad.png")])
    assert res.exit_code != 0 and "cannot read image" in res.output and "Traceback" not in res.output
    with pytest.raises(EdgeqError, match="do not give the model input"):
        complete(parse_spec("size=16x16"), (1, 8, 8, 1))
    with pytest.raises(EdgeqError, match="flatten to 192 values"):
        complete(parse_spec("size=8x8,mode=RGB"), (1, 64))
    with pytest.raises(EdgeqError, match="unknown key"):
        parse_spec("colour=red")
    with pytest.raises(EdgeqError, match="fraction"):
        parse_spec("scale=1/0")
    res = CliRunner().invoke(main, ["pack", str(DIGITS_MODELS / "cnn_t2_qat.pt2"), "--preprocess", "resize=fancy",
                                    "-o", str(tmp_path / "x.edgeq")])
    assert res.exit_code == 2 and "resize" in res.output and not (tmp_path / "x.edgeq").exists()


def test_deploy_input_refuses_a_signed_deploy(blobs, tmp_path):
    """Bundling the images rewrites the blob, which would void its signature: refused, before anything runs."""
    out, _, files, _, _ = blobs
    assert cli("keygen", "-o", str(tmp_path / "k"))
    cli("sign", str(out["cnn"]), "--key", str(tmp_path / "k"), "-o", str(tmp_path / "signed.edgeq"))
    res = CliRunner().invoke(main, ["deploy", "--target", "rpi5", str(tmp_path / "signed.edgeq"), "--pubkey",
                                    str(tmp_path / "k.pub"), "--input", str(files[0])])
    assert res.exit_code == 2 and "voids its signature" in res.output, res.output
