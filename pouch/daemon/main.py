"""``pouchd`` entry point: parse flags, load the config file, run the daemon."""
from __future__ import annotations

import asyncio
import logging
import sys


def main(argv: list[str] | None = None) -> None:
    from .config import ConfigError, load
    try:
        cfg, args = load(argv)
    except ConfigError as e:
        print(f"pouchd: {e}", file=sys.stderr)
        sys.exit(1)
    if args.version:
        import pouch
        print(f"pouchd version {pouch.__version__}")
        return
    logging.basicConfig(level=logging.DEBUG if cfg.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    from .daemon import Daemon
    try:
        asyncio.run(Daemon(cfg).run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
