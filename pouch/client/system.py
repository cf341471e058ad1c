"""System endpoints: ping, version, info, events, auth, df, remount-lxcfs."""


class SystemAPIMixin:
    """Methods for daemon-wide endpoints; mixed into APIClient."""

    def ping(self):
        """GET /_ping; returns the body text ("OK")."""
        return self._result(self._get(self._url("/_ping")), as_json=False).decode()

    def version(self):
        """GET /version."""
        return self._result(self._get(self._url("/version")))

    def info(self):
        """GET /info."""
        return self._result(self._get(self._url("/info")))

    def df(self):
        """GET /system/df."""
        return self._result(self._get(self._url("/system/df")))

    def events(self, since=None, until=None, filters=None):
        """GET /events; yields event dicts until the daemon ends the stream."""
        params = {"since": since, "until": until, "filters": filters or None}
        from pouch.client import streams
        return streams.json_stream(self._get(self._url("/events", params=params), stream=True))

    def login(self, username, password, serveraddress=None):
        """POST /auth; returns {"Status", "IdentityToken"}."""
        body = {"username": username, "password": password, "serveraddress": serveraddress or ""}
        return self._result(self._post(self._url("/auth"), body=body))

    def logout(self, serveraddress=None):
        """POST /logout?serveraddress= (Pouch extension)."""
        self._post(self._url("/logout", params={"serveraddress": serveraddress})).read()

    def remount_lxcfs(self):
        """POST /remount-lxcfs (Pouch extension): remount lxcfs views into containers."""
        return self._result(self._post(self._url("/remount-lxcfs")))

    def update_daemon(self, config):
        """POST /daemon/update (Pouch): {"Labels": [...], "ImageProxy": "..."}."""
        self._post(self._url("/daemon/update"), body=config).read()
