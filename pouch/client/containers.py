"""Container endpoints: create, lifecycle, list, inspect, logs, attach, stats, update."""


class ContainerAPIMixin:
    """Methods for /containers/*; mixed into APIClient."""

    def create_container(self, config, name=None):
        """POST /containers/create with a Moby config dict. Returns {"Id", "Warnings"}."""
        return self._result(self._post(self._url("/containers/create", params={"name": name}), body=config))

    def start(self, container, detach_keys=None, checkpoint=None, checkpoint_dir=None):
        """POST /containers/{id}/start (Pouch: ?checkpoint=&checkpoint-dir= restores a checkpoint)."""
        params = {"detachKeys": detach_keys, "checkpoint": checkpoint, "checkpoint-dir": checkpoint_dir}
        self._post(self._url("/containers/{0}/start", container, params=params)).read()

    def checkpoint_create(self, container, name, checkpoint_dir=None, exit=False):
        """POST /containers/{id}/checkpoints (Pouch)."""
        body = {"CheckpointID": name, "CheckpointDir": checkpoint_dir or "", "Exit": bool(exit)}
        self._post(self._url("/containers/{0}/checkpoints", container), body=body).read()

    def checkpoint_list(self, container, checkpoint_dir=None):
        """GET /containers/{id}/checkpoints (Pouch): checkpoint names."""
        return self._result(self._get(self._url("/containers/{0}/checkpoints", container,
                                                params={"checkpointdir": checkpoint_dir}))) or []

    def checkpoint_delete(self, container, name, checkpoint_dir=None):
        """DELETE /containers/{id}/checkpoints/{name} (Pouch)."""
        self._delete(self._url("/containers/{0}/checkpoints/{1}", container, name,
                               params={"dir": checkpoint_dir})).read()

    def stop(self, container, timeout=None):
        """POST /containers/{id}/stop?t=."""
        self._post(self._url("/containers/{0}/stop", container, params={"t": timeout})).read()

    def restart(self, container, timeout=None):
        """POST /containers/{id}/restart?t=."""
        self._post(self._url("/containers/{0}/restart", container, params={"t": timeout})).read()

    def kill(self, container, signal=None):
        """POST /containers/{id}/kill?signal=."""
        self._post(self._url("/containers/{0}/kill", container, params={"signal": signal})).read()

    def remove_container(self, container, force=False, v=False):
        """DELETE /containers/{id}?force=&v=."""
        params = {"force": force or None, "v": v or None}
        self._delete(self._url("/containers/{0}", container, params=params)).read()

    def pause(self, container):
        """POST /containers/{id}/pause."""
        self._post(self._url("/containers/{0}/pause", container)).read()

    def unpause(self, container):
        """POST /containers/{id}/unpause."""
        self._post(self._url("/containers/{0}/unpause", container)).read()

    def rename(self, container, name):
        """POST /containers/{id}/rename?name=."""
        self._post(self._url("/containers/{0}/rename", container, params={"name": name})).read()

    def wait(self, container, condition=None):
        """POST /containers/{id}/wait; returns {"StatusCode", "Error"}."""
        return self._result(self._post(self._url("/containers/{0}/wait", container,
                                                  params={"condition": condition})))

    def wait_begin(self, container, condition=None):
        """Send the wait request on its own connection now; call the result to get the reply.

        Lets `run` register the wait before `start`, so a fast exit is never missed: the daemon
        answers the headers once the wait is registered, and this returns only then.
        """
        conn = self.new_connection()
        self.send_request(conn, "POST", self._url("/containers/{0}/wait", container,
                                                  params={"condition": condition}))
        try:
            resp = self._get_response(conn, "POST")
        except BaseException:
            conn.close()
            raise

        def finish():
            try:
                return self._result(self._raise_for_status(resp))
            finally:
                conn.close()
        return finish

    def containers(self, all=False, filters=None, limit=None, size=False):
        """GET /containers/json; filters is {"key": ["v", ...]}."""
        params = {"all": all or None, "filters": filters or None, "limit": limit, "size": size or None}
        return self._result(self._get(self._url("/containers/json", params=params)))

    def inspect_container(self, container, size=False):
        """GET /containers/{id}/json."""
        return self._result(self._get(self._url("/containers/{0}/json", container,
                                                params={"size": size or None})))

    def top(self, container, ps_args=None):
        """GET /containers/{id}/top; returns {"Titles", "Processes"}."""
        return self._result(self._get(self._url("/containers/{0}/top", container,
                                                params={"ps_args": ps_args})))

    def stats(self, container, stream=True):
        """GET /containers/{id}/stats: one dict, or an iterator of dicts when stream."""
        url = self._url("/containers/{0}/stats", container, params={"stream": stream})
        if not stream:
            return self._result(self._get(url))
        from pouch.client import streams
        return streams.json_stream(self._get(url, stream=True))

    def update_container(self, container, update):
        """POST /containers/{id}/update with resource fields / RestartPolicy."""
        return self._result(self._post(self._url("/containers/{0}/update", container), body=update))

    def resize(self, container, height, width):
        """POST /containers/{id}/resize?h=&w=."""
        self._post(self._url("/containers/{0}/resize", container, params={"h": height, "w": width})).read()

    def logs(self, container, stdout=True, stderr=True, follow=False, tail=None, since=None,
             until=None, timestamps=False, tty=False, details=False):
        """GET /containers/{id}/logs; yields (stream, bytes) (frames demuxed unless tty)."""
        params = {"stdout": stdout, "stderr": stderr, "follow": follow or None, "tail": tail,
                  "since": since, "until": until, "timestamps": timestamps or None, "details": details or None}
        from pouch.client import streams
        resp = self._get(self._url("/containers/{0}/logs", container, params=params), stream=True)
        return streams.demux_output(resp, tty)

    def attach_socket(self, container, stdin=False, stdout=True, stderr=True, logs=False,
                      detach_keys=None):
        """POST /containers/{id}/attach upgraded to a raw HijackedSocket."""
        params = {"stream": True, "stdin": stdin, "stdout": stdout, "stderr": stderr,
                  "logs": logs or None, "detachKeys": detach_keys}
        from pouch.client.hijack import hijack
        return hijack(self.address, "POST", self._url("/containers/{0}/attach", container, params=params), tls=self.tls)

    def changes(self, container):
        """GET /containers/{id}/changes."""
        return self._result(self._get(self._url("/containers/{0}/changes", container)))

    def commit(self, container, repository=None, tag=None, message=None, author=None,
               pause=True, changes=None):
        """POST /commit?container=...; returns {"Id"}."""
        params = {"container": container, "repo": repository, "tag": tag, "comment": message,
                  "author": author, "pause": pause, "changes": changes}
        return self._result(self._post(self._url("/commit", params=params), body={}))

    def get_archive(self, container, path):
        """GET /containers/{id}/archive?path=: (HTTPResponse streaming a tar, stat dict)."""
        resp = self._get(self._url("/containers/{0}/archive", container, params={"path": path}),
                         stream=True)
        return resp, _decode_stat(resp.getheader("X-Docker-Container-Path-Stat"))

    def diff(self, container):
        """GET /containers/{id}/changes: [{"Path", "Kind"}] (0 changed, 1 added, 2 deleted)."""
        return self._result(self._get(self._url("/containers/{0}/changes", container))) or []

    def stat_path(self, container, path):
        """HEAD /containers/{id}/archive?path=: the stat dict of a path in the container."""
        resp = self._head(self._url("/containers/{0}/archive", container, params={"path": path}))
        resp.read()
        return _decode_stat(resp.getheader("X-Docker-Container-Path-Stat"))

    def put_archive(self, container, path, data, no_overwrite_dir_non_dir=False, copy_uid_gid=False):
        """PUT /containers/{id}/archive?path= with a tar body (bytes or a file): extract it into path."""
        params = {"path": path, "noOverwriteDirNonDir": no_overwrite_dir_non_dir, "copyUIDGID": copy_uid_gid}
        self._request("PUT", self._url("/containers/{0}/archive", container, params=params),
                      body=data, headers={"Content-Type": "application/x-tar"}).read()

    def upgrade(self, container, image, cmd=None, entrypoint=None):
        """POST /containers/{id}/upgrade (Pouch extension)."""
        body = {"Image": image, "Cmd": cmd, "Entrypoint": entrypoint}
        self._post(self._url("/containers/{0}/upgrade", container),
                   body={k: v for k, v in body.items() if v is not None}).read()


def _decode_stat(header):
    if not header:
        return {}
    import base64

    from . import jsonlite
    return jsonlite.loads(base64.b64decode(header))
