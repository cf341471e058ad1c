"""Volume endpoints: create, list, inspect, remove, prune."""


class VolumeAPIMixin:
    """Methods for /volumes/*; mixed into APIClient."""

    def volumes(self, filters=None):
        """GET /volumes; returns {"Volumes": [...], "Warnings": [...]}."""
        return self._result(self._get(self._url("/volumes", params={"filters": filters or None})))

    def create_volume(self, name=None, driver=None, driver_opts=None, labels=None):
        """POST /volumes/create."""
        body = {"Name": name or "", "Driver": driver or "local", "DriverOpts": driver_opts or {},
                "Labels": labels or {}}
        return self._result(self._post(self._url("/volumes/create"), body=body))

    def inspect_volume(self, name):
        """GET /volumes/{name}."""
        return self._result(self._get(self._url("/volumes/{0}", name)))

    def remove_volume(self, name, force=False):
        """DELETE /volumes/{name}."""
        self._delete(self._url("/volumes/{0}", name, params={"force": force or None})).read()

    def prune_volumes(self, filters=None):
        """POST /volumes/prune."""
        return self._result(self._post(self._url("/volumes/prune", params={"filters": filters or None})))
