"""API versions pouchd speaks: Moby's current one it claims, and the oldest (Pouch's) it accepts."""
API_VERSION = "1.41"
MIN_API_VERSION = "1.24"
