"""pouch's own iptables chains (all named POUCH-*): forwarding, isolation between networks, masquerade.

Only rules in chains we own are added or removed, plus one jump rule per built-in chain
(FORWARD, nat POSTROUTING) inserted once; no other engine's chain is ever flushed or edited.
Per-network rules are derived from (bridge, subnet, internal, masquerade) so the same rules
can be checked (-C), added and deleted after a restart.
Layout (filter):  FORWARD -> POUCH-FORWARD -> POUCH-ISOLATION-1 -> POUCH-ISOLATION-2
          (nat):  POSTROUTING -> POUCH-POSTROUTING
"""
from __future__ import annotations

import asyncio

from .errors import NetworkError

FORWARD = "POUCH-FORWARD"
ISO1 = "POUCH-ISOLATION-1"
ISO2 = "POUCH-ISOLATION-2"
POSTROUTING = "POUCH-POSTROUTING"
CHAINS = {"filter": [FORWARD, ISO1, ISO2], "nat": [POSTROUTING]}
JUMPS = [("filter", "FORWARD", FORWARD), ("nat", "POSTROUTING", POSTROUTING)]


async def run(*args: str, check: bool = True) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "iptables", "-w", "5", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise NetworkError(f"iptables {' '.join(args)}: {err.decode().strip()}")
    return proc.returncode or 0, out.decode()


async def ensure_base() -> None:
    """Create our chains and the jump rules into them (idempotent)."""
    for table, chains in CHAINS.items():
        for c in chains:
            rc, _ = await run("-t", table, "-n", "-L", c, check=False)
            if rc != 0:
                await run("-t", table, "-N", c)
    for table, builtin, chain in JUMPS:
        rc, _ = await run("-t", table, "-C", builtin, "-j", chain, check=False)
        if rc != 0:
            await run("-t", table, "-I", builtin, "1", "-j", chain)
    rc, _ = await run("-t", "filter", "-C", FORWARD, "-j", ISO1, check=False)
    if rc != 0:
        await run("-t", "filter", "-I", FORWARD, "1", "-j", ISO1)


def network_rules(bridge: str, subnet: str, internal: bool, masquerade: bool = True) -> list[tuple[str, str, list[str]]]:
    """(table, chain, rule args) for one bridge network."""
    c = f"pouch net {bridge}"
    cm = ["-m", "comment", "--comment", c]
    if internal:
        return [
            ("filter", ISO1, ["-i", bridge, "!", "-o", bridge, *cm, "-j", "DROP"]),
            ("filter", ISO1, ["-o", bridge, "!", "-i", bridge, *cm, "-j", "DROP"]),
            ("filter", FORWARD, ["-i", bridge, "-o", bridge, *cm, "-j", "ACCEPT"]),
        ]
    rules = [
        ("filter", ISO1, ["-i", bridge, "!", "-o", bridge, *cm, "-j", ISO2]),
        ("filter", ISO2, ["-o", bridge, *cm, "-j", "DROP"]),
        ("filter", FORWARD, ["-i", bridge, *cm, "-j", "ACCEPT"]),
        ("filter", FORWARD, ["-o", bridge, *cm, "-j", "ACCEPT"]),
    ]
    if masquerade:
        rules.append(("nat", POSTROUTING, ["-s", subnet, "!", "-o", bridge, *cm, "-j", "MASQUERADE"]))
    return rules


async def ensure_network(bridge: str, subnet: str, internal: bool, masquerade: bool = True) -> None:
    for table, chain, rule in network_rules(bridge, subnet, internal, masquerade):
        rc, _ = await run("-t", table, "-C", chain, *rule, check=False)
        if rc != 0:
            await run("-t", table, "-A", chain, *rule)


async def remove_network(bridge: str, subnet: str, internal: bool, masquerade: bool = True) -> None:
    for table, chain, rule in network_rules(bridge, subnet, internal, masquerade):
        while (await run("-t", table, "-D", chain, *rule, check=False))[0] == 0:
            pass


async def save() -> str:
    proc = await asyncio.create_subprocess_exec("iptables-save", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return out.decode()
