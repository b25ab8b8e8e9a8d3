"""pytest plugin for hardware-in-the-loop tests (entry point `pytest11`).

    pytest --edgeq-target rpi5                      # the target's connection (emulated by default)
    pytest --edgeq-target rpi5 --edgeq-connect ssh://pi@raspberrypi.local

Fixtures: `edgeq_target` (the Target), `edgeq_device` (an open, locked transport), `deploy`
(a function: model or blob -> Report). Markers: `edgeq_family("arm-linux", ...)` and
`edgeq_feature("dotprod")` skip a test on targets without them. Without --edgeq-target every test
using these fixtures is skipped with the reason, as labgrid's plugin does without a configuration.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgeq", "edgeq hardware-in-the-loop")
    group.addoption("--edgeq-target", default=None, help="target id to run device tests on (e.g. rpi5)")
    group.addoption("--edgeq-connect", default=None, help="connection URL; default: the target's own")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "edgeq_family(*families): run only on targets of these families")
    config.addinivalue_line("markers", "edgeq_feature(*features): run only on targets with these CPU features")


@pytest.fixture(scope="session")
def edgeq_target(request: pytest.FixtureRequest):
    target_id = request.config.getoption("--edgeq-target")
    if not target_id:
        pytest.skip("no device configured: pass --edgeq-target ID (and optionally --edgeq-connect URL)")
    from edgeq.targets.registry import get_target

    return get_target(target_id)


@pytest.fixture(autouse=True)
def _edgeq_markers(request: pytest.FixtureRequest) -> None:
    families = request.node.get_closest_marker("edgeq_family")
    features = request.node.get_closest_marker("edgeq_feature")
    if not (families or features):
        return
    target = request.getfixturevalue("edgeq_target")
    if families and target.family not in families.args:
        pytest.skip(f"needs a {' or '.join(families.args)} target, {target.id} is {target.family}")
    if features and not set(features.args) <= set(target.features):
        pytest.skip(f"needs {', '.join(features.args)}; {target.id} has {', '.join(target.features)}")


@pytest.fixture(scope="session")
def edgeq_connect(request: pytest.FixtureRequest, edgeq_target) -> str:
    return request.config.getoption("--edgeq-connect") or edgeq_target.connect


@pytest.fixture
def edgeq_device(edgeq_connect: str):
    """An open transport to the device, holding its lock for the test."""
    from edgeq.runner.devices import device_lock
    from edgeq.runner.transports import open_transport

    with device_lock(edgeq_connect), open_transport(edgeq_connect) as dev:
        yield dev


@pytest.fixture
def deploy(edgeq_target, edgeq_connect: str):
    """deploy(model_or_blob, calib=None, fmt=None, runs=5) -> edgeq Report (accuracy checked)."""
    from edgeq.runner.deploy import deploy as run_deploy

    def _deploy(model: str | Path, calib: str | Path | None = None, fmt: str | None = None, runs: int = 5):
        return run_deploy(edgeq_target.id, Path(model), fmt=fmt, connect=edgeq_connect,
                          calib=Path(calib) if calib else None, runs=runs, warmup=1)

    return _deploy
