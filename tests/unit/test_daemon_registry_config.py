"""daemon.json's registry keys as /info reports them (the docker CLI parses the CIDR list)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dockling.daemon import config as daemon_config
from dockling.daemon.wiring import registry_config


def load(tmp_path: Path, data: dict[str, object]) -> daemon_config.DaemonConfig:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(data))
    args = argparse.Namespace(
        config_file=str(path),
        data_root=None,
        exec_root=None,
        host=None,
        pidfile=None,
        group=None,
        default_runtime=None,
        log_level=None,
        debug=False,
    )
    return daemon_config.load(args)


def test_names_and_cidrs_are_kept_apart(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "insecure-registries": ["myreg.example:5000", "10.0.0.0/8"],
            "registry-mirrors": ["http://127.0.0.1:5999/"],
        },
    )
    reported = registry_config(config)
    assert reported["InsecureRegistryCIDRs"] == ["127.0.0.0/8", "10.0.0.0/8"]
    assert reported["IndexConfigs"]["myreg.example:5000"]["Secure"] is False
    assert reported["IndexConfigs"]["docker.io"]["Mirrors"] == ["http://127.0.0.1:5999"]
    assert reported["Mirrors"] == ["http://127.0.0.1:5999"]
