"""The CRI streaming server (Exec, Attach, PortForward over SPDY/3.1 and WebSocket); see server.py."""
