"""/networks routes: Docker's network create, list, inspect, remove, prune, connect, disconnect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockling import errors
from dockling.api.backend import Backend
from dockling.api.filters import NETWORK_FILTERS, parse_filters
from dockling.api.http import Request, Response, Router, json_response
from dockling.network.model import Network
from dockling.network.service import PREDEFINED


def network_json(backend: Backend, network: Network) -> dict[str, Any]:
    """One network in the Engine API's shape, with its running containers."""
    containers: dict[str, Any] = {}
    for sandbox, endpoint in backend.networks.containers_on(network.id):
        containers[sandbox.container_id] = {
            "Name": sandbox.name,
            "EndpointID": endpoint.veth,
            "MacAddress": endpoint.mac,
            "IPv4Address": f"{endpoint.ip}/{endpoint.prefixlen}",
            "IPv6Address": "",
        }
    config: list[dict[str, str]] = []
    if network.subnet:
        entry = {"Subnet": network.subnet, "Gateway": network.gateway}
        if network.ip_range:
            entry["IPRange"] = network.ip_range
        config.append(entry)
    return {
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": network.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": config},
        "Internal": network.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": dict(network.options),
        "Labels": dict(network.labels),
    }


def _matches(network: Network, filters: Mapping[str, list[str]], in_use: bool) -> bool:
    if "name" in filters and not any(n in network.name for n in filters["name"]):
        return False
    if "id" in filters and not any(network.id.startswith(i) for i in filters["id"]):
        return False
    if "driver" in filters and network.driver not in filters["driver"]:
        return False
    if "type" in filters:
        kind = "builtin" if network.name in PREDEFINED and not network.user_defined else "custom"
        if kind not in filters["type"]:
            return False
    if "dangling" in filters:
        dangling = filters["dangling"][0] in ("true", "1")
        builtin = network.name in PREDEFINED and not network.user_defined
        if dangling != (not in_use and not builtin):
            return False
    for selector in filters.get("label", []):
        key, sep, value = selector.partition("=")
        if key not in network.labels or (sep and network.labels[key] != value):
            return False
    return True


def register(router: Router, backend: Backend) -> None:
    networks = backend.networks

    async def create(req: Request) -> Response:
        body = await req.json() or {}
        name = body.get("Name") or ""
        if not isinstance(name, str):
            raise errors.InvalidParameter("network name must be a string")
        ipam = body.get("IPAM") or {}
        configs = ipam.get("Config") or []
        if len(configs) > 1:
            raise errors.NotImplementedFeature("only one IPAM config (one subnet) is supported")
        config = configs[0] if configs else {}
        if body.get("EnableIPv6"):
            raise errors.NotImplementedFeature("IPv6 networks are not supported yet")
        network = await networks.create(
            name,
            driver=body.get("Driver") or "bridge",
            subnet=config.get("Subnet") or "",
            gateway=config.get("Gateway") or "",
            ip_range=config.get("IPRange") or "",
            internal=bool(body.get("Internal")),
            labels={str(k): str(v) for k, v in (body.get("Labels") or {}).items()},
            options={str(k): str(v) for k, v in (body.get("Options") or {}).items()},
        )
        return json_response({"Id": network.id, "Warning": ""}, status=201)

    async def list_(req: Request) -> Response:
        filters = parse_filters(req.arg("filters"), NETWORK_FILTERS)
        result = []
        for network in networks.list():
            in_use = bool(networks.containers_on(network.id))
            if _matches(network, filters, in_use):
                result.append(network_json(backend, network))
        return json_response(result)

    async def inspect(req: Request) -> Response:
        return json_response(network_json(backend, networks.get(req.params["id"])))

    async def remove(req: Request) -> Response:
        await networks.remove(req.params["id"])
        return Response(status=204, body=b"")

    async def prune(req: Request) -> Response:
        deleted = await networks.prune()
        return json_response({"NetworksDeleted": deleted or None})

    async def connect(req: Request) -> Response:
        body = await req.json() or {}
        endpoint = body.get("EndpointConfig") or {}
        ipv4 = (endpoint.get("IPAMConfig") or {}).get("IPv4Address") or ""
        aliases = tuple(str(a) for a in endpoint.get("Aliases") or ())
        await backend.containers.connect_network(
            str(body.get("Container") or ""), req.params["id"], aliases=aliases, ipv4=ipv4
        )
        return Response(status=200, body=b"")

    async def disconnect(req: Request) -> Response:
        body = await req.json() or {}
        await backend.containers.disconnect_network(
            str(body.get("Container") or ""), req.params["id"], force=bool(body.get("Force"))
        )
        return Response(status=200, body=b"")

    router.add("POST", "/networks/create", create)
    router.add("GET", "/networks", list_)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", disconnect)
