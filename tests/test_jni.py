"""The Android JNI glue, for real on the host: examples/android's CMake project (runtime with PAL=hooks +
edgeq_jni.c) built against the JDK, ai.edgeq.EdgeqModel compiled with javac, and a Java program that
runs a digits blob and must print the host reference's outputs bit for bit (docs/android.md)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq import reference
from edgeq.blob import write_blob
from edgeq.cli import main

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "android" / "app" / "src" / "main"
JAVA_SOURCES = [APP / "java/ai/edgeq/EdgeqModel.java", APP / "java/ai/edgeq/EdgeqException.java",
                ROOT / "tests/java/ai/edgeq/EdgeqModelCheck.java", ROOT / "tests/java/ai/edgeq/EdgeqSignatureCheck.java"]


def java_home() -> str:
    javac = shutil.which("javac")
    assert javac, "javac missing: tools/bootstrap.sh installs openjdk-17-jdk-headless"
    return str(Path(javac).resolve().parent.parent)


@pytest.fixture(scope="module")
def jni_build(tmp_path_factory) -> tuple[Path, Path]:
    """(directory with libedgeq_jni.so, directory with the compiled classes)."""
    build = tmp_path_factory.mktemp("jni-build")
    env = {**os.environ, "JAVA_HOME": java_home()}
    for cmd in (["cmake", "-S", str(APP / "cpp"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(build), "-j2"]):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    classes = build / "classes"
    subprocess.run(["javac", "-Xlint:all", "-Werror", "-d", str(classes), *map(str, JAVA_SOURCES)], check=True,
                   timeout=300)
    return build, classes


def test_jni_glue_build_links_the_hooks_runtime(jni_build):
    build, _ = jni_build
    dynamic = subprocess.run(["readelf", "-d", str(build / "libedgeq_jni.so")], capture_output=True, text=True,
                             check=True).stdout
    assert "[libedgeq.so]" in dynamic
    syms = subprocess.run(["readelf", "--dyn-syms", "-W", str(build / "edgeq" / "libedgeq.so")], capture_output=True,
                          text=True, check=True).stdout
    assert re.search(r"FUNC +GLOBAL +DEFAULT +\d+ edgeq_pal_set_hooks", syms)


@pytest.mark.parametrize("stem", ["mlp_t2_qat", "cnn_t2_qat"])
def test_java_runs_digits_like_the_host_reference(jni_build, tmp_path, stem):
    from conftest import digits_blob_graph

    build, classes = jni_build
    g, _, x_test, y_test = digits_blob_graph(stem, "t2", n_tests=8)
    blob = tmp_path / "digits.edgeq"
    write_blob(g, blob)
    x = x_test[:24].astype("<f4")
    want = reference.run(g, [x])[0].astype("<f4")
    x.tofile(tmp_path / "x.f32")
    want.tofile(tmp_path / "want.f32")
    res = subprocess.run(["java", "-Xcheck:jni", f"-Djava.library.path={build}", "-cp", str(classes),
                          "ai.edgeq.EdgeqModelCheck", str(blob), str(tmp_path / "x.f32"), "24",
                          str(tmp_path / "want.f32")], capture_output=True, text=True, timeout=300, check=False)
    out = res.stdout
    assert res.returncode == 0 and out.rstrip().endswith("ok"), out + res.stderr
    assert "WARNING" not in res.stdout + res.stderr  # -Xcheck:jni found nothing
    assert f"outputs {want.size} differing 0" in out
    predictions = [int(v) for v in re.search(r"predictions \[(.*)\]", out).group(1).split(", ")]
    assert predictions == want.argmax(1).tolist()
    assert (np.array(predictions) == y_test[:24]).mean() > 0.8
    n_layers = len(g.ops)
    assert f"layers {n_layers} timed" in out  # the clock hook of the glue feeds the layer profile
    assert int(re.search(r"layers \d+ timed (\d+)", out).group(1)) >= 1
    assert "bundled 8 equal" in out
    assert "over-batch EDGEQ_E_BATCH 306" in out and "closed model is closed" in out
    assert re.search(r"corrupt EDGEQ_E_\w+_CRC: ", out)


def test_java_requires_a_signature_when_given_a_public_key(jni_build, mlp_t2_blob, tmp_path):
    build, classes = jni_build
    for name in ("fleet", "other"):
        res = CliRunner().invoke(main, ["keygen", "-o", str(tmp_path / f"{name}.key")])
        assert res.exit_code == 0, res.output
    signed = tmp_path / "signed.edgeq"
    res = CliRunner().invoke(main, ["sign", str(mlp_t2_blob), "--key", str(tmp_path / "fleet.key"), "-o", str(signed)])
    assert res.exit_code == 0, res.output
    res = subprocess.run(["java", "-Xcheck:jni", f"-Djava.library.path={build}", "-cp", str(classes),
                          "ai.edgeq.EdgeqSignatureCheck", str(signed), str(mlp_t2_blob),
                          str(tmp_path / "fleet.key.pub"), str(tmp_path / "other.key.pub")],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines() == ["signed loaded 4 layers", "unsigned EDGEQ_E_UNSIGNED",
                                       "other-key EDGEQ_E_SIGNATURE_KEY", "short-key EDGEQ_E_ARG",
                                       "no-key loaded 4 layers"]
