"""APIClient: the shared plumbing plus one mixin per resource."""
from pouch.client.base import API_VERSION, DEFAULT_HOST, BaseClient  # noqa: F401
from pouch.client.containers import ContainerAPIMixin
from pouch.client.execs import ExecAPIMixin
from pouch.client.images import ImageAPIMixin
from pouch.client.networks import NetworkAPIMixin
from pouch.client.system import SystemAPIMixin
from pouch.client.volumes import VolumeAPIMixin


class APIClient(BaseClient, ContainerAPIMixin, ExecAPIMixin, ImageAPIMixin, SystemAPIMixin,
                VolumeAPIMixin, NetworkAPIMixin):
    """Low-level client for pouchd: `APIClient(host="unix:///var/run/pouchd.sock")`."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
