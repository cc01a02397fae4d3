"""`dockling info`: the proxy and registry lines, laid out as docker 28's `docker info`."""

from __future__ import annotations

from typing import Any

from dockling.cli.commands.system import proxy_and_registry_lines


def test_everything_set_is_shown_in_dockers_order() -> None:
    info: dict[str, Any] = {
        "HttpProxy": "http://proxy.example:3128",
        "HttpsProxy": "https://proxy.example:3129",
        "NoProxy": "localhost,127.0.0.1",
        "ExperimentalBuild": False,
        "RegistryConfig": {
            "IndexConfigs": {
                "docker.io": {"Name": "docker.io", "Secure": True, "Official": True},
                "myreg.example:5000": {"Name": "myreg.example:5000", "Secure": False},
            },
            "InsecureRegistryCIDRs": ["127.0.0.0/8", "10.9.0.0/16"],
            "Mirrors": ["http://127.0.0.1:5999", "https://mirror.example/"],
        },
    }
    # What docker 28.2's CLI printed for the same /info answer (checked against docklingd).
    assert proxy_and_registry_lines(info) == [
        " HTTP Proxy: http://proxy.example:3128",
        " HTTPS Proxy: https://proxy.example:3129",
        " No Proxy: localhost,127.0.0.1",
        " Experimental: false",
        " Insecure Registries:",
        "  myreg.example:5000",
        "  127.0.0.0/8",
        "  10.9.0.0/16",
        " Registry Mirrors:",
        "  http://127.0.0.1:5999",
        "  https://mirror.example/",
    ]


def test_unset_proxies_and_empty_lists_are_left_out() -> None:
    info: dict[str, Any] = {
        "HttpProxy": "",
        "HttpsProxy": "https://proxy.example:3129",
        "NoProxy": "",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": []},
    }
    assert proxy_and_registry_lines(info) == [
        " HTTPS Proxy: https://proxy.example:3129",
        " Experimental: false",
    ]


def test_labels_follow_the_proxies() -> None:
    info: dict[str, Any] = {"NoProxy": "example.com", "Labels": ["a=b", "c=d"]}
    assert proxy_and_registry_lines(info) == [
        " No Proxy: example.com",
        " Labels:",
        "  a=b",
        "  c=d",
        " Experimental: false",
    ]
