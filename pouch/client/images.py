"""Image endpoints: list, inspect, pull, push, tag, remove, save, load, import, history."""
from pouch.client import jsonlite
from pouch.client.base import quote



def _auth_header(auth):
    if not auth:
        return {}
    import base64
    return {"X-Registry-Auth": base64.urlsafe_b64encode(jsonlite.dumps(auth).encode()).decode()}


class ImageAPIMixin:
    """Methods for /images/*; mixed into APIClient."""

    def images(self, all=False, filters=None, digests=False):
        """GET /images/json."""
        params = {"all": all or None, "filters": filters or None, "digests": digests or None}
        return self._result(self._get(self._url("/images/json", params=params)))

    def inspect_image(self, image):
        """GET /images/{name}/json."""
        return self._result(self._get(self._url("/images/{0}/json", image)))

    def history(self, image):
        """GET /images/{name}/history."""
        return self._result(self._get(self._url("/images/{0}/history", image)))

    def pull(self, image, tag=None, auth=None, platform=None):
        """POST /images/create?fromImage=; yields progress messages (dicts)."""
        params = {"fromImage": image, "tag": tag, "platform": platform}
        resp = self._post(self._url("/images/create", params=params), headers=_auth_header(auth),
                          stream=True)
        from pouch.client import streams
        return streams.json_stream(resp)

    def push(self, image, tag=None, auth=None):
        """POST /images/{name}/push; yields progress messages."""
        resp = self._post(self._url("/images/{0}/push", image, params={"tag": tag}),
                          headers=_auth_header(auth) or {"X-Registry-Auth": "e30="}, stream=True)
        from pouch.client import streams
        return streams.json_stream(resp)

    def tag(self, image, repository, tag=None, force=False):
        """POST /images/{name}/tag?repo=&tag=."""
        params = {"repo": repository, "tag": tag, "force": force or None}
        self._post(self._url("/images/{0}/tag", image, params=params)).read()

    def remove_image(self, image, force=False, noprune=False):
        """DELETE /images/{name}; returns the list of Untagged/Deleted entries."""
        params = {"force": force or None, "noprune": noprune or None}
        return self._result(self._delete(self._url("/images/{0}", image, params=params)))

    def save(self, names):
        """GET /images/save?name=... (Pouch's form): an HTTPResponse streaming the tar archive."""
        query = "&".join("name=" + quote(n, safe="") for n in names)
        return self._get(self._url("/images/save") + "?" + query, stream=True)

    def load(self, data, quiet=False, name=None):
        """POST /images/load with a tar (bytes or binary file); yields progress messages.
        ``name`` names the archive's unnamed images (Pouch's ``load -i FILE NAME``)."""
        resp = self._post(self._url("/images/load", params={"quiet": quiet or None, "name": name}), body=data,
                          headers={"Content-Type": "application/x-tar"}, stream=True)
        from pouch.client import streams
        return streams.json_stream(resp)

    def import_image(self, data=None, src=None, repository=None, tag=None, changes=None,
                     message=None):
        """POST /images/create?fromSrc=- (body data) or fromSrc=URL; yields progress."""
        params = {"fromSrc": src or "-", "repo": repository, "tag": tag, "message": message,
                  "changes": changes}
        resp = self._post(self._url("/images/create", params=params), body=data,
                          headers={"Content-Type": "application/x-tar"}, stream=True)
        from pouch.client import streams
        return streams.json_stream(resp)

    def prune_images(self, filters=None):
        """POST /images/prune; returns {"ImagesDeleted", "SpaceReclaimed"}."""
        return self._result(self._post(self._url("/images/prune", params={"filters": filters or None})))

    def search(self, term, limit=None):
        """GET /images/search?term=."""
        return self._result(self._get(self._url("/images/search", params={"term": term, "limit": limit})))
