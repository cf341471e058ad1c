"""Pod networking for the CRI: the CNI configuration kubelet deployments provide, run with
pouch's CNI runtime (pouch.network.cni).

The first ``*.conflist`` / ``*.conf`` / ``*.json`` file (in name order) of the conf
dir is the pod network, as containerd's CRI picks it.  When the directory has
none, a default bridge + portmap list is written there (``10-pouch-cri.conflist``;
its subnet follows UpdateRuntimeConfig's pod CIDR).  ADD results are cached
under pouchd's home, so a DEL after a pouchd restart uses the config the ADD used.
"""
from __future__ import annotations

import ipaddress
import json
import os

from pouch.errtypes import InvalidArgument
from pouch.network.cni import CNIRunner, RuntimeConf

DEFAULT_FILE = "10-pouch-cri.conflist"
DEFAULT_SUBNET = "10.88.0.0/16"
DEFAULT_BRIDGE = "cni-pouch0"


def default_conflist(subnet: str = DEFAULT_SUBNET, bridge: str = DEFAULT_BRIDGE) -> dict:
    return {
        "cniVersion": "1.0.0", "name": "pouch-cri",
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


class PodNetwork:
    def __init__(self, conf_dir: str, bin_dir: str, cache_dir: str) -> None:
        self.conf_dir = conf_dir
        self.runner = CNIRunner(cache_dir, [bin_dir])
        self.conflist: dict | None = None
        self.error = ""

    def load(self) -> None:
        """(Re)read the pod network's configuration; write the default when there is none."""
        os.makedirs(self.conf_dir, exist_ok=True)
        files = sorted(f for f in os.listdir(self.conf_dir) if f.endswith((".conflist", ".conf", ".json")))
        if not files:
            self._write(default_conflist())
            files = [DEFAULT_FILE]
        path = os.path.join(self.conf_dir, files[0])
        try:
            with open(path) as f:
                conf = json.load(f)
        except (OSError, ValueError) as e:
            self.conflist, self.error = None, f"CNI config {path}: {e}"
            return
        if "plugins" not in conf:  # a single-plugin .conf
            conf = {"cniVersion": conf.get("cniVersion", "1.0.0"), "name": conf.get("name", "pod"),
                    "plugins": [conf]}
        self.conflist, self.error = conf, ""

    def _write(self, conf: dict) -> None:
        tmp = os.path.join(self.conf_dir, "." + DEFAULT_FILE)
        with open(tmp, "w") as f:
            json.dump(conf, f, indent=2)
        os.replace(tmp, os.path.join(self.conf_dir, DEFAULT_FILE))

    def set_pod_cidr(self, cidr: str) -> None:
        """UpdateRuntimeConfig: the default configuration (only pouch's own file) uses the pod CIDR."""
        if not cidr:
            return
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise InvalidArgument(f"invalid pod CIDR {cidr!r}") from None
        path = os.path.join(self.conf_dir, DEFAULT_FILE)
        if os.path.exists(path):
            with open(path) as f:
                bridge = json.load(f)["plugins"][0].get("bridge", DEFAULT_BRIDGE)
            self._write(default_conflist(str(net), bridge))
            self.load()

    @property
    def ready(self) -> bool:
        return self.conflist is not None

    async def add(self, sandbox_id: str, netns: str, pod: dict, ports: list[dict]) -> str:
        """Attach the pod; returns its IPv4 address."""
        if self.conflist is None:
            self.load()
        if self.conflist is None:
            raise InvalidArgument(f"pod network not ready: {self.error}")
        args = {"K8S_POD_NAMESPACE": pod.get("namespace", ""), "K8S_POD_NAME": pod.get("name", ""),
                "K8S_POD_INFRA_CONTAINER_ID": sandbox_id, "K8S_POD_UID": pod.get("uid", "")}
        rt = RuntimeConf(container_id=sandbox_id, netns=netns, ifname="eth0", args=args,
                         capability_args={"portMappings": ports} if ports else {})
        result = await self.runner.add(self.conflist, rt)
        for ip in result.get("ips") or []:
            addr = ip.get("address", "").split("/")[0]
            if addr and ":" not in addr:
                return addr
        return ""

    async def delete(self, sandbox_id: str, netns: str) -> None:
        """Detach the pod (from the cached ADD: works after restarts and conf changes)."""
        for att in self.runner.cached_attachments():
            if att["containerId"] == sandbox_id:
                await self.runner.delete(RuntimeConf(container_id=sandbox_id, netns=netns,
                                                     ifname=att["ifName"]), network_name=att["networkName"])
