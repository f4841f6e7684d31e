"""Which hosts `xunjian ssh` inspects, and how to reach each: command line, inventory, contract.

An inventory is TOML (`[[hosts]]` tables) or YAML (a list of mappings, or `hosts:` holding one)
with, per host, `address` (or `host`), `user`, `port`, `jump`, `identity`, `sudo` and a label
`hostname`. A contract file is an inventory too: its `[[hosts]]` carry the same fields, and
its thresholds, alarm rules and redaction rules then apply to the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.config import ConfigError, describe_validation, read_toml
from agent.sources.ssh import Route, SshConfig, parse_jumps
from checks.params import Resolver
from collector.contracts import Contract, HostSelector


class InventoryHost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: Optional[str] = Field(None, description="[user@]host[:port] to connect to")
    host: Optional[str] = Field(None, description="same as address")
    hostname: Optional[str] = Field(None, description="label; also the address when none is set")
    host_id: Optional[str] = None
    tag: Optional[str] = None
    user: Optional[str] = None
    port: Optional[int] = Field(None, gt=0, lt=65536)
    jump: Optional[str] = Field(None, description="jump host chain, e.g. ops@bastion:2222,inner")
    identity: Optional[str] = Field(None, description="private key file")
    sudo: bool = Field(False, description="run the probe with `sudo -n sh -s`")
    thresholds: Dict[str, Dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reachable(self) -> "InventoryHost":
        if self.address and self.host and self.address != self.host:
            raise ValueError("give address or host, not both")
        return self

    @property
    def target(self) -> Optional[str]:
        return self.address or self.host or self.hostname


@dataclass
class Target:
    """One host to inspect: its route and, from a contract, its threshold layers."""

    label: str
    route: Route
    resolver: Optional[Resolver] = None


@dataclass
class Inventory:
    hosts: List[InventoryHost] = field(default_factory=list)
    contract: Optional[Contract] = None
    skipped: List[str] = field(default_factory=list)


def load_inventory(path: Path) -> Inventory:
    """Read TOML or YAML; ConfigError names the file and the field."""
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    else:
        data = read_toml(path)
    contract: Optional[Contract] = None
    if isinstance(data, dict) and "number" in data:
        try:
            contract = Contract.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(describe_validation(path, exc, "invalid contract")) from exc
        raw: Any = [_from_selector(h) for h in contract.hosts]
    else:
        raw = data.get("hosts", []) if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: expected a list of hosts (or a 'hosts' list)")
    inventory = Inventory(contract=contract)
    for index, entry in enumerate(raw):
        try:
            host = InventoryHost.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"hosts[{index}].{'.'.join(str(x) for x in e['loc']) or 'host'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"{path}: {problems}") from exc
        if host.target is None:
            inventory.skipped.append(f"{path}: hosts[{index}] (tag:{host.tag}) has no address")
            continue
        inventory.hosts.append(host)
    return inventory


def _from_selector(selector: HostSelector) -> Dict[str, Any]:
    return selector.model_dump(exclude_none=True)


def build_targets(
    names: Sequence[str],
    inventory: Optional[Inventory],
    ssh_config: SshConfig,
    *,
    keys: Sequence[str] = (),
    jump: Optional[str] = None,
) -> List[Target]:
    """Routes for the command-line hosts and the inventory's, in that order.

    `-i` keys and `-J` jumps apply to every host; an inventory host's own `identity` comes
    first and its `jump` replaces `-J`. Without either, ~/.ssh/config's ProxyJump applies.
    Jump hosts are resolved through ~/.ssh/config as well (HostName, User, Port, IdentityFile).
    """
    targets: List[Target] = []
    for name in names:
        targets.append(_target(name, name, ssh_config, keys, jump, None, False, None))
    if inventory is not None:
        for host in inventory.hosts:
            assert host.target is not None
            extra_keys = [host.identity, *keys] if host.identity else list(keys)
            resolver = _resolver(inventory.contract, host)
            targets.append(
                _target(
                    host.hostname or host.target,
                    host.target,
                    ssh_config,
                    extra_keys,
                    host.jump or jump,
                    host.user,
                    host.sudo,
                    resolver,
                    host.port,
                )
            )
    return targets


def _resolver(contract: Optional[Contract], host: InventoryHost) -> Optional[Resolver]:
    if contract is None:
        return None
    selector = contract.host_selector(host.hostname or "", host.host_id)
    return contract.resolver_for(selector)


def _target(
    label: str,
    text: str,
    ssh_config: SshConfig,
    keys: Sequence[str],
    jump: Optional[str],
    user: Optional[str],
    sudo: bool,
    resolver: Optional[Resolver],
    port: Optional[int] = None,
) -> Target:
    endpoint = ssh_config.endpoint(text, user=user, port=port, keys=keys)
    chain = parse_jumps(jump) if jump is not None else ssh_config.proxy_jump(endpoint.alias)
    jumps = [ssh_config.endpoint(hop, keys=keys) for hop in chain]
    return Target(label=label, route=Route(endpoint, jumps, sudo), resolver=resolver)
