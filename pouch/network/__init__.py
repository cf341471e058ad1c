"""Container networking: netns, CNI bridge networks, port publishing, /etc files (see manager.py)."""
