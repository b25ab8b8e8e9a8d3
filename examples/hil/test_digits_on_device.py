"""A hardware-in-the-loop test as users write them: `pytest examples/hil --edgeq-target rpi5`.

Without --edgeq-target the tests skip; with the emulated default they run on qemu for real.
"""

from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parent.parent / "digits" / "models"


@pytest.mark.edgeq_family("arm-linux", "android", "host")
def test_digits_cnn_matches_host_reference(deploy):
    report = deploy(MODELS / "cnn_t2_qat.pt2", calib=MODELS / "cnn_data.npz")
    assert report.accuracy.passed and report.accuracy.top1_agreement == 1.0
    assert report.latency.stats.n == 5


@pytest.mark.edgeq_feature("dotprod")
def test_int4_mlp_on_a_dotprod_core(deploy):
    report = deploy(MODELS / "mlp_q4_qat.pt2", calib=MODELS / "mlp_data.npz", fmt="q4")
    assert report.blob.formats == ["q4"] and report.accuracy.max_abs_err == 0


@pytest.mark.edgeq_family("mcu")
def test_digits_mlp_on_a_microcontroller(deploy):
    report = deploy(MODELS / "mlp_t2_qat.pt2", calib=MODELS / "mlp_data.npz", fmt="t2", runs=2)
    assert report.accuracy.passed and report.accuracy.max_abs_err == 0
    assert 0 < report.memory.flash_used <= report.memory.flash_available
