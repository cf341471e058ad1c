"""Network endpoints: create, list, inspect, remove, prune, connect, disconnect."""


class NetworkAPIMixin:
    """Methods for /networks/*; mixed into APIClient."""

    def networks(self, filters=None):
        """GET /networks."""
        return self._result(self._get(self._url("/networks", params={"filters": filters or None})))

    def create_network(self, name, driver=None, options=None, ipam=None, labels=None, internal=False,
                       enable_ipv6=False):
        """POST /networks/create; returns {"Id", "Warning"}."""
        body = {"Name": name, "Driver": driver or "bridge", "Options": options or {},
                "Labels": labels or {}, "Internal": internal, "CheckDuplicate": True,
                "EnableIPv6": bool(enable_ipv6)}
        if ipam:
            body["IPAM"] = ipam
        return self._result(self._post(self._url("/networks/create"), body=body))

    def inspect_network(self, network):
        """GET /networks/{id}."""
        return self._result(self._get(self._url("/networks/{0}", network)))

    def remove_network(self, network):
        """DELETE /networks/{id}."""
        self._delete(self._url("/networks/{0}", network)).read()

    def connect_container_to_network(self, container, network, aliases=None, ipv4_address=None):
        """POST /networks/{id}/connect."""
        endpoint = {}
        if aliases:
            endpoint["Aliases"] = aliases
        if ipv4_address:
            endpoint["IPAMConfig"] = {"IPv4Address": ipv4_address}
        body = {"Container": container, "EndpointConfig": endpoint}
        self._post(self._url("/networks/{0}/connect", network), body=body).read()

    def disconnect_container_from_network(self, container, network, force=False):
        """POST /networks/{id}/disconnect."""
        body = {"Container": container, "Force": force}
        self._post(self._url("/networks/{0}/disconnect", network), body=body).read()

    def prune_networks(self, filters=None):
        """POST /networks/prune; returns {"NetworksDeleted": [...]}."""
        return self._result(self._post(self._url("/networks/prune", params={"filters": filters or None})))
