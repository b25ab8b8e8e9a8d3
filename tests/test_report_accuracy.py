"""accuracy_metrics on examples small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeq.report import accuracy_metrics


def test_identical_outputs():
    ref = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    m = accuracy_metrics(ref.copy(), ref, labels=[1, 0])
    assert m["n"] == 2 and m["top1_agreement"] == 1.0 and m["accuracy"] == 1.0 == m["reference_accuracy"]
    assert m["max_abs_err"] == 0 and m["mae"] == 0 and m["rmse"] == 0 and m["l2r"] == 0
    assert m["cosine"] == pytest.approx(1.0)


def test_mismatch_hand_computed():
    ref = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    dev = np.array([[1.0, 1.0, 1.5], [0.0, 0.0, 3.0]])
    # diff = [[0, -1, 1.5], [0, 0, 0]]; sample 0's argmax moves from 1 (reference) to 2 (device)
    m = accuracy_metrics(dev, ref, labels=[1, 2])
    assert m["top1_agreement"] == 0.5                    # sample 0 now argmax 2, reference 1
    assert m["accuracy"] == 0.5 and m["reference_accuracy"] == 1.0
    assert m["max_abs_err"] == 1.5 and m["max_abs_err_at"] == [0, 2]
    assert m["mae"] == pytest.approx(2.5 / 6)
    assert m["rmse"] == pytest.approx(math.sqrt(3.25 / 6))
    assert m["l2r"] == pytest.approx(math.sqrt(3.25) / math.sqrt(14))
    # cosine: dot = 1 + 2 + 9 = 12; |dev| = sqrt(1 + 1 + 2.25 + 9) = sqrt(13.25); |ref| = sqrt(14)
    assert m["cosine"] == pytest.approx(12 / math.sqrt(13.25 * 14))


def test_multi_dim_outputs_and_edge_cases():
    ref = np.zeros((2, 2, 2))
    m = accuracy_metrics(ref, ref)
    assert m["cosine"] == 1.0 and m["l2r"] is None and m["accuracy"] is None   # all-zero: nothing to scale by
    dev = ref.copy()
    dev[1, 1, 0] = -0.5
    m = accuracy_metrics(dev, ref)
    assert m["max_abs_err_at"] == [1, 2] and m["cosine"] == 0.0 and m["l2r"] is None
    assert accuracy_metrics(np.array([[2.0]]), np.array([[1.0]]))["top1_agreement"] is None  # one output value
    with pytest.raises(ValueError, match="shape"):
        accuracy_metrics(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="labels"):
        accuracy_metrics(np.zeros((2, 3)), np.zeros((2, 3)), labels=[0])
    with pytest.raises(ValueError, match="NaN"):
        accuracy_metrics(np.array([[np.nan]]), np.array([[0.0]]))
