"""Device inventory, `edgeq devices`, and the per-device lock that serialises deploys to one board."""

from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner

from edgeq.cli import main
from edgeq.errors import DeviceError, EdgeqError
from edgeq.runner.devices import device_lock, get_device, load_inventory


def test_inventory_and_devices_command(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEQ_CONFIG_DIR", str(tmp_path))
    (tmp_path / "devices.toml").write_text('[lab-pi]\ntarget = "rpi5"\nconnect = "ssh://pi@10.0.0.5"\n')
    assert get_device("lab-pi").connect == "ssh://pi@10.0.0.5"
    res = CliRunner().invoke(main, ["devices", "--json"])
    assert res.exit_code == 0 and '"lab-pi"' in res.output
    with pytest.raises(EdgeqError, match="no device 'nope'.*known: lab-pi"):
        get_device("nope")
    (tmp_path / "devices.toml").write_text('[x]\ntarget = "rpi5"\nconect = "ssh://a"\n')
    with pytest.raises(EdgeqError, match=r"\[x\] unknown key 'conect'"):
        load_inventory()


def test_lock_serialises_and_times_out():
    order = []

    def hold():
        with device_lock("ssh://pi@board-a"):
            order.append("a-in")
            time.sleep(0.5)
            order.append("a-out")

    t = threading.Thread(target=hold)
    t.start()
    time.sleep(0.1)
    with pytest.raises(DeviceError, match="busy"), device_lock("ssh://pi@board-a", wait_s=0.1):
        pass
    with device_lock("ssh://pi@board-b", wait_s=0.1):  # another board is free
        order.append("b")
    with device_lock("ssh://pi@board-a", wait_s=5):
        order.append("a2")
    t.join()
    assert order == ["a-in", "b", "a-out", "a2"]


def test_install_dir_must_be_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEQ_CONFIG_DIR", str(tmp_path))
    (tmp_path / "devices.toml").write_text('[pi]\ntarget = "rpi5"\nconnect = "ssh://pi@a"\ninstall_dir = "opt/edgeq"\n')
    with pytest.raises(EdgeqError, match=r"\[pi\] install_dir must be an absolute path"):
        load_inventory()
    (tmp_path / "devices.toml").write_text('[pi]\ntarget = "rpi5"\nconnect = "ssh://pi@a"\ninstall_dir = "/opt/edgeq"\n')
    assert get_device("pi").install_dir == "/opt/edgeq"
