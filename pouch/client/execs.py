"""Exec endpoints: create, start (hijacked or detached), inspect, resize."""


class ExecAPIMixin:
    """Methods for /containers/{id}/exec and /exec/*; mixed into APIClient."""

    def exec_create(self, container, cmd, stdin=False, stdout=True, stderr=True, tty=False,
                    user=None, workdir=None, environment=None, privileged=False, detach_keys=None):
        """POST /containers/{id}/exec; returns {"Id"}."""
        body = {"Cmd": cmd, "AttachStdin": stdin, "AttachStdout": stdout, "AttachStderr": stderr,
                "Tty": tty, "Privileged": privileged}
        for key, value in (("User", user), ("WorkingDir", workdir), ("Env", environment),
                           ("DetachKeys", detach_keys)):
            if value:
                body[key] = value
        return self._result(self._post(self._url("/containers/{0}/exec", container), body=body))

    def exec_start(self, exec_id, tty=False, detach=False, exit_code=False):
        """POST /exec/{id}/start: None when detached, else a HijackedSocket.

        ``exit_code``: ask pouchd to end a multiplexed (non-TTY) stream with the exit code
        (a frame on stream 3, see ``streams.SYSTEM``), so no ``exec_inspect`` is needed after it.
        """
        body = {"Detach": detach, "Tty": tty}
        url = self._url("/exec/{0}/start", exec_id)
        if detach:
            self._post(url, body=body).read()
            return None
        from pouch.client.hijack import hijack
        headers = {"X-Pouch-Exit-Code": "1"} if exit_code and not tty else None
        # the keep-alive connection (exec_create's) becomes the stream: no second connect
        sock = self._conn.take_socket() if self._conn is not None else None
        return hijack(self.address, "POST", url, body=body, tls=self.tls, headers=headers, sock=sock)

    def exec_inspect(self, exec_id):
        """GET /exec/{id}/json."""
        return self._result(self._get(self._url("/exec/{0}/json", exec_id)))

    def exec_resize(self, exec_id, height, width):
        """POST /exec/{id}/resize?h=&w=."""
        self._post(self._url("/exec/{0}/resize", exec_id, params={"h": height, "w": width})).read()
