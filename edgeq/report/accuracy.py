"""Device outputs against the host reference: the metrics `stedgeai validate` reports (ACC, MAE, RMSE,
L2r, COS) plus top-1 agreement and where the worst element sits, so a failure can name it."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def accuracy_metrics(device_outputs: ArrayLike, reference_outputs: ArrayLike,
                     labels: ArrayLike | None = None) -> dict[str, Any]:
    """Metrics over N samples; axis 0 is the sample, the rest is one output (flattened for top-1).

    - top1_agreement: fraction of samples whose device argmax equals the reference argmax
      (None for single-element outputs, where an argmax means nothing);
    - accuracy / reference_accuracy: device / reference argmax against `labels` (None without labels);
    - max_abs_err with `max_abs_err_at` = [sample, flat element index], mae, rmse;
    - l2r = ||device - ref|| / ||ref|| (None when the reference is all zero);
    - cosine of the two flattened output sets (1.0 when both are all zero, 0.0 when only one is).
    """
    dev = np.asarray(device_outputs, dtype=np.float64)
    ref = np.asarray(reference_outputs, dtype=np.float64)
    if dev.shape != ref.shape:
        raise ValueError(f"device outputs have shape {dev.shape}, reference {ref.shape}")
    if dev.ndim == 0 or dev.shape[0] == 0:
        raise ValueError("need at least one sample (axis 0)")
    if not (np.all(np.isfinite(dev)) and np.all(np.isfinite(ref))):
        raise ValueError("outputs contain NaN or infinity")
    n = dev.shape[0]
    d, r = dev.reshape(n, -1), ref.reshape(n, -1)
    diff = d - r
    worst = int(np.argmax(np.abs(diff)))
    dn, rn = float(np.linalg.norm(d)), float(np.linalg.norm(r))
    if dn == 0 and rn == 0:
        cosine = 1.0
    elif dn == 0 or rn == 0:
        cosine = 0.0
    else:
        cosine = float(np.clip(np.dot(d.ravel(), r.ravel()) / (dn * rn), -1.0, 1.0))
    top_d, top_r = np.argmax(d, axis=1), np.argmax(r, axis=1)
    out: dict[str, Any] = {
        "n": n,
        "top1_agreement": float(np.mean(top_d == top_r)) if d.shape[1] > 1 else None,
        "accuracy": None, "reference_accuracy": None,
        "max_abs_err": float(np.abs(diff).max()),
        "max_abs_err_at": [worst // d.shape[1], worst % d.shape[1]],
        "mae": float(np.abs(diff).mean()),
        "rmse": float(np.sqrt(np.mean(diff * diff))),
        "l2r": float(np.linalg.norm(diff) / rn) if rn > 0 else None,
        "cosine": cosine,
    }
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        if lab.shape[0] != n:
            raise ValueError(f"{lab.shape[0]} labels for {n} samples")
        out["accuracy"] = float(np.mean(top_d == lab))
        out["reference_accuracy"] = float(np.mean(top_r == lab))
    return out
