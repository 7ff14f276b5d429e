"""The keepalived configuration dialect (VRRP subset) → a frozen model.

Theory of operation
-------------------
Two passes. :func:`_tokenize` turns the text into words, quoted strings, braces
and line ends, each with its file:line (``#`` and ``!`` start comments, as in
keepalived; ``include GLOB`` splices files in). :func:`_tree` groups tokens into
statements — a keyword, its words, and optionally a ``{ ... }`` block — the
same generic shape for every section. The section readers then map statements
onto the dataclasses of :mod:`lbcore.vrrp.model`; anything they do not know is a
:class:`ConfigError` naming file:line and what was expected.

Keywords that real configurations carry but that do not change VRRP behaviour
(``notification_email``, ``smtp_server``...) are accepted and reported in
:attr:`Config.warnings`; keywords that would change behaviour we do not
implement are errors, so a config never silently means something else here.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lbcore.config.model import Source
from lbcore.vrrp.model import (
    Command,
    Config,
    GlobalDefs,
    Notify,
    SyncGroup,
    Track,
    VirtualAddress,
    VrrpInstance,
    VrrpScript,
)

__all__ = [
    "Command",
    "Config",
    "ConfigError",
    "GlobalDefs",
    "Notify",
    "SyncGroup",
    "Track",
    "VirtualAddress",
    "VrrpInstance",
    "VrrpScript",
    "load",
    "script_problems",
]


class ConfigError(Exception):
    """A configuration problem at file:line."""

    def __init__(self, where: Source | None, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


# ---------------------------------------------------------------- tokens → statements


@dataclass(frozen=True, slots=True)
class _Tok:
    text: str
    where: Source
    kind: str  # "word", "str", "{", "}", "nl"


@dataclass
class _Stmt:
    keyword: str
    args: list[str]
    where: Source
    block: list[_Stmt] | None = None


def _tokenize(path: Path, depth: int = 0) -> Iterator[_Tok]:
    if depth > 8:
        raise ConfigError(None, f"{path}: include nesting too deep")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(None, f"cannot read {path}: {exc.strerror}") from exc
    for lineno, line in enumerate(text.splitlines(), 1):
        where = Source(str(path), lineno)
        i, n = 0, len(line)
        words: list[_Tok] = []
        while i < n:
            c = line[i]
            if c.isspace():
                i += 1
            elif c in "#!":
                break
            elif c in "{}":
                words.append(_Tok(c, where, c))
                i += 1
            elif c == '"':
                end = line.find('"', i + 1)
                if end < 0:
                    raise ConfigError(where, "unterminated quoted string")
                words.append(_Tok(line[i + 1 : end], where, "str"))
                i = end + 1
            else:
                j = i
                while j < n and not line[j].isspace() and line[j] not in '{}"':
                    j += 1
                words.append(_Tok(line[i:j], where, "word"))
                i = j
        if words and words[0].kind == "word" and words[0].text == "include":
            if len(words) != 2:
                raise ConfigError(where, "include expects one file name or pattern")
            pattern = os.path.join(path.parent, words[1].text)
            for name in sorted(glob.glob(pattern)):
                yield from _tokenize(Path(name), depth + 1)
            continue
        yield from words
        yield _Tok("", where, "nl")


def _tree(toks: list[_Tok], i: int, top: bool) -> tuple[list[_Stmt], int]:
    stmts: list[_Stmt] = []
    n = len(toks)
    while i < n:
        tok = toks[i]
        if tok.kind == "nl":
            i += 1
            continue
        if tok.kind == "}":
            if top:
                raise ConfigError(tok.where, "'}' without a matching '{'")
            return stmts, i + 1
        if tok.kind == "{":
            raise ConfigError(tok.where, "'{' must follow a keyword")
        stmt = _Stmt(tok.text, [], tok.where)
        i += 1
        while i < n and toks[i].kind in ("word", "str"):
            stmt.args.append(toks[i].text)
            i += 1
        j = i
        while j < n and toks[j].kind == "nl":
            j += 1
        if j < n and toks[j].kind == "{":
            stmt.block, i = _tree(toks, j + 1, top=False)
        stmts.append(stmt)
    if not top:
        raise ConfigError(toks[-1].where if toks else None, "missing '}' at end of file")
    return stmts, i


# ---------------------------------------------------------------- value readers


def _one(s: _Stmt, what: str) -> str:
    if len(s.args) != 1:
        raise ConfigError(s.where, f"'{s.keyword}' expects {what}")
    return s.args[0]


def _int(s: _Stmt, lo: int, hi: int, text: str | None = None) -> int:
    raw = _one(s, f"an integer {lo}..{hi}") if text is None else text
    try:
        val = int(raw)
    except ValueError:
        raise ConfigError(
            s.where, f"'{s.keyword}' expects an integer {lo}..{hi}, got '{raw}'"
        ) from None
    if not lo <= val <= hi:
        raise ConfigError(s.where, f"'{s.keyword}' expects an integer {lo}..{hi}, got {val}")
    return val


def _secs(s: _Stmt, lo: float, hi: float) -> float:
    raw = _one(s, f"seconds {lo}..{hi}")
    try:
        val = float(raw)
    except ValueError:
        raise ConfigError(
            s.where, f"'{s.keyword}' expects seconds {lo}..{hi}, got '{raw}'"
        ) from None
    if not lo <= val <= hi:
        raise ConfigError(s.where, f"'{s.keyword}' expects seconds {lo}..{hi}, got {raw}")
    return val


def _ipv4(s: _Stmt, raw: str) -> str:
    try:
        return str(ipaddress.IPv4Address(raw))
    except ValueError:
        raise ConfigError(s.where, f"'{s.keyword}': '{raw}' is not an IPv4 address") from None


def _flag(s: _Stmt) -> bool:
    if s.args:
        raise ConfigError(s.where, f"'{s.keyword}' takes no arguments")
    return True


def _block(s: _Stmt) -> list[_Stmt]:
    if s.block is None:
        raise ConfigError(s.where, f"'{s.keyword}' expects a {{ ... }} block")
    return s.block


def _command(s: _Stmt) -> Command:
    if not s.args:
        raise ConfigError(
            s.where, f"'{s.keyword}' expects a command (quote it if it has arguments)"
        )
    try:
        argv = tuple(shlex.split(s.args[0]))
    except ValueError as exc:
        raise ConfigError(s.where, f"'{s.keyword}': {exc}") from None
    if not argv:
        raise ConfigError(s.where, f"'{s.keyword}' expects a command")
    if len(s.args) > 2:
        raise ConfigError(s.where, f"'{s.keyword}' expects \"COMMAND\" [USER]; quote the command")
    return Command(argv, s.args[1] if len(s.args) == 2 else None)


def _weight(s: _Stmt, args: list[str]) -> int | None:
    if not args:
        return None
    if args[0] != "weight" or len(args) != 2:
        raise ConfigError(s.where, f"'{s.keyword}': expected 'weight N' after the name")
    return _int(s, -253, 253, args[1])


#: Accepted and ignored: they do not change VRRP behaviour (mail alerts, tuning knobs).
_IGNORED_GLOBALS = {
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_connect_timeout",
    "smtp_alert",
    "max_auto_priority",
    "vrrp_skip_check_adv_addr",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "lvs_id",
    "script_group",
}


def _reader(
    handlers: dict[str, Callable[[_Stmt], None]], section: str
) -> Callable[[list[_Stmt]], None]:
    def read(stmts: list[_Stmt]) -> None:
        for s in stmts:
            fn = handlers.get(s.keyword)
            if fn is None:
                known = ", ".join(sorted(handlers))
                raise ConfigError(
                    s.where,
                    f"unknown keyword '{s.keyword}' in {section} (expected one of: {known})",
                )
            fn(s)

    return read


# ---------------------------------------------------------------- sections


def _global_defs(s: _Stmt, warnings: list[str]) -> GlobalDefs:
    v: dict[str, object] = {}

    def ignored(st: _Stmt) -> None:
        warnings.append(f"{st.where}: '{st.keyword}' is accepted and ignored")

    handlers: dict[str, Callable[[_Stmt], None]] = {
        "router_id": lambda st: v.__setitem__("router_id", _one(st, "a name")),
        "vrrp_version": lambda st: v.__setitem__("vrrp_version", _int(st, 2, 3)),
        "enable_script_security": lambda st: v.__setitem__("enable_script_security", _flag(st)),
        "script_user": lambda st: v.__setitem__(
            "script_user", st.args[0] if st.args else _one(st, "USER")
        ),
        "vrrp_garp_master_delay": lambda st: v.__setitem__("garp_master_delay", _secs(st, 0, 1000)),
        "vrrp_garp_master_repeat": lambda st: v.__setitem__("garp_master_repeat", _int(st, 1, 100)),
    }
    for key in _IGNORED_GLOBALS:
        handlers[key] = ignored
    _reader(handlers, "global_defs")(_block(s))
    return GlobalDefs(**v)  # type: ignore[arg-type]


def _vrrp_script(s: _Stmt) -> VrrpScript:
    name = _one(s, "a script name")
    v: dict[str, object] = {}
    _reader(
        {
            "script": lambda st: v.__setitem__(
                "command",
                _command(
                    _Stmt(
                        st.keyword,
                        [" ".join(shlex.quote(a) for a in st.args)]
                        if len(st.args) > 1
                        else st.args,
                        st.where,
                    )
                ),
            ),
            "lbcore_socket": lambda st: v.__setitem__(
                "lbcore_socket", _one(st, "an admin socket path")
            ),
            "interval": lambda st: v.__setitem__("interval", _secs(st, 0.01, 3600)),
            "timeout": lambda st: v.__setitem__("timeout", _secs(st, 0.01, 3600)),
            "weight": lambda st: v.__setitem__("weight", _weight(st, ["weight", *st.args])),
            "rise": lambda st: v.__setitem__("rise", _int(st, 1, 1000)),
            "fall": lambda st: v.__setitem__("fall", _int(st, 1, 1000)),
            "user": lambda st: v.__setitem__("user", _one(st, "a user")),
        },
        f"vrrp_script {name}",
    )(_block(s))
    user = v.pop("user", None)
    cmd = v.get("command")
    if isinstance(cmd, Command) and user:
        v["command"] = Command(cmd.argv, str(user))
    if ("command" in v) == ("lbcore_socket" in v):
        raise ConfigError(
            s.where, f"vrrp_script {name}: expected exactly one of 'script' or 'lbcore_socket'"
        )
    return VrrpScript(name, s.where, **v)  # type: ignore[arg-type]


def _addresses(s: _Stmt) -> tuple[VirtualAddress, ...]:
    out = []
    for st in _block(s):
        raw = st.keyword
        try:
            net = ipaddress.IPv4Interface(raw)
        except ValueError:
            raise ConfigError(st.where, f"expected an IPv4 address[/prefix], got '{raw}'") from None
        opts: dict[str, str] = {}
        args = list(st.args)
        while args:
            key = args.pop(0)
            if key not in ("dev", "label") or not args:
                raise ConfigError(
                    st.where, f"after the address expected 'dev IFACE' or 'label NAME', got '{key}'"
                )
            opts[key] = args.pop(0)
        out.append(
            VirtualAddress(str(net.ip), net.network.prefixlen, opts.get("dev"), opts.get("label"))
        )
    return tuple(out)


def _tracks(s: _Stmt) -> tuple[Track, ...]:
    return tuple(Track(st.keyword, st.where, _weight(st, st.args)) for st in _block(s))


def _notify_handlers(n: dict[str, Command]) -> dict[str, Callable[[_Stmt], None]]:
    def setter(key: str) -> Callable[[_Stmt], None]:
        return lambda st: n.__setitem__(key, _command(st))

    return {
        "notify_master": setter("master"),
        "notify_backup": setter("backup"),
        "notify_fault": setter("fault"),
        "notify_stop": setter("stop"),
        "notify": setter("any"),
    }


def _vrrp_instance(s: _Stmt, g: GlobalDefs) -> VrrpInstance:
    name = _one(s, "an instance name")
    v: dict[str, object] = {}
    notify: dict[str, Command] = {}
    advert: list[_Stmt] = []

    def state(st: _Stmt) -> None:
        val = _one(st, "MASTER or BACKUP")
        if val not in ("MASTER", "BACKUP"):
            raise ConfigError(st.where, f"'state' expects MASTER or BACKUP, got '{val}'")
        v["initial_state"] = val

    def auth(st: _Stmt) -> None:
        kind, password = None, None
        for a in _block(st):
            if a.keyword == "auth_type":
                kind = _one(a, "PASS")
                if kind != "PASS":
                    raise ConfigError(
                        a.where, f"auth_type '{kind}' is not supported (expected PASS)"
                    )
            elif a.keyword == "auth_pass":
                password = _one(a, "a password (8 characters are used)")
            else:
                raise ConfigError(
                    a.where,
                    f"unknown keyword '{a.keyword}' in authentication"
                    " (expected auth_type, auth_pass)",
                )
        if kind is None or password is None:
            raise ConfigError(st.where, "authentication needs both auth_type PASS and auth_pass")
        v["auth_pass"] = password

    def peers(st: _Stmt) -> None:
        v["unicast_peers"] = tuple(_ipv4(p, p.keyword) for p in _block(st))

    handlers: dict[str, Callable[[_Stmt], None]] = {
        "state": state,
        "interface": lambda st: v.__setitem__("interface", _one(st, "an interface name")),
        "virtual_router_id": lambda st: v.__setitem__("vrid", _int(st, 1, 255)),
        "priority": lambda st: v.__setitem__("priority", _int(st, 1, 255)),
        "advert_int": advert.append,
        "version": lambda st: v.__setitem__("version", _int(st, 2, 3)),
        "nopreempt": lambda st: v.__setitem__("preempt", not _flag(st)),
        "preempt_delay": lambda st: v.__setitem__("preempt_delay", _secs(st, 0, 1000)),
        "authentication": auth,
        "unicast_src_ip": lambda st: v.__setitem__(
            "unicast_src_ip", _ipv4(st, _one(st, "an address"))
        ),
        "unicast_peer": peers,
        "virtual_ipaddress": lambda st: v.__setitem__("addresses", _addresses(st)),
        "track_interface": lambda st: v.__setitem__("track_interfaces", _tracks(st)),
        "track_script": lambda st: v.__setitem__("track_scripts", _tracks(st)),
        "garp_master_delay": lambda st: v.__setitem__("garp_master_delay", _secs(st, 0, 1000)),
        "garp_master_repeat": lambda st: v.__setitem__("garp_master_repeat", _int(st, 1, 100)),
        **_notify_handlers(notify),
    }
    _reader(handlers, f"vrrp_instance {name}")(_block(s))
    if "vrid" not in v:
        raise ConfigError(s.where, f"vrrp_instance {name}: 'virtual_router_id' is required")
    if "interface" not in v and not v.get("unicast_peers"):
        raise ConfigError(
            s.where, f"vrrp_instance {name}: 'interface' is required (or unicast_peer)"
        )
    version = int(v.get("version", g.vrrp_version))  # type: ignore[call-overload]
    v["version"] = version
    if advert:
        secs = _secs(advert[-1], 0.01, 40.95 if version == 3 else 255)
        cs = round(secs * 100)
        if version == 2 and cs % 100:
            raise ConfigError(
                advert[-1].where,
                f"VRRPv2 advert_int must be whole seconds, got {secs} (use version 3)",
            )
        v["interval_cs"] = cs
    if version == 3 and "auth_pass" in v:
        raise ConfigError(
            s.where, f"vrrp_instance {name}: authentication is VRRPv2 only (RFC 5798 removed it)"
        )
    v.setdefault("garp_master_delay", g.garp_master_delay)
    v.setdefault("garp_master_repeat", g.garp_master_repeat)
    v.setdefault("interface", None)
    return VrrpInstance(name, s.where, notify=Notify(**notify), **v)  # type: ignore[arg-type]


def _sync_group(s: _Stmt) -> SyncGroup:
    name = _one(s, "a group name")
    members: list[str] = []
    notify: dict[str, Command] = {}

    def group(st: _Stmt) -> None:
        members.extend(m.keyword for m in _block(st))
        for m in _block(st):
            if m.args:
                raise ConfigError(m.where, "one instance name per line in 'group'")

    _reader({"group": group, **_notify_handlers(notify)}, f"vrrp_sync_group {name}")(_block(s))
    if not members:
        raise ConfigError(s.where, f"vrrp_sync_group {name}: 'group {{ ... }}' lists no instance")
    return SyncGroup(name, s.where, tuple(members), Notify(**notify))


# ---------------------------------------------------------------- entry point


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a keepalived-dialect file; raises :class:`ConfigError`."""
    toks = list(_tokenize(Path(path)))
    stmts, _ = _tree(toks, 0, top=True)
    warnings: list[str] = []
    g = GlobalDefs()
    seen_globals = False
    scripts: dict[str, VrrpScript] = {}
    inst_stmts: list[_Stmt] = []
    groups: list[SyncGroup] = []
    for s in stmts:
        if s.keyword == "global_defs":
            if seen_globals:
                raise ConfigError(s.where, "global_defs appears twice")
            seen_globals = True
            g = _global_defs(s, warnings)
        elif s.keyword == "vrrp_script":
            sc = _vrrp_script(s)
            if sc.name in scripts:
                raise ConfigError(
                    s.where,
                    f"vrrp_script {sc.name} is defined twice (first at {scripts[sc.name].where})",
                )
            scripts[sc.name] = sc
        elif s.keyword == "vrrp_instance":
            inst_stmts.append(s)
        elif s.keyword == "vrrp_sync_group":
            groups.append(_sync_group(s))
        else:
            raise ConfigError(
                s.where,
                f"unknown top-level keyword '{s.keyword}' (expected global_defs, vrrp_script, "
                "vrrp_instance, vrrp_sync_group, include)",
            )
    # Instances are read after global_defs wherever it appears (vrrp_version default).
    instances = [_vrrp_instance(s, g) for s in inst_stmts]
    _cross_check(instances, scripts, groups)
    return Config(g, scripts, tuple(instances), tuple(groups), tuple(warnings))


def _cross_check(
    instances: list[VrrpInstance], scripts: dict[str, VrrpScript], groups: list[SyncGroup]
) -> None:
    names: dict[str, VrrpInstance] = {}
    vrids: dict[tuple[str | None, int], VrrpInstance] = {}
    for inst in instances:
        if inst.name in names:
            raise ConfigError(
                inst.where,
                f"vrrp_instance {inst.name} is defined twice (first at {names[inst.name].where})",
            )
        names[inst.name] = inst
        key = (inst.interface, inst.vrid)
        if key in vrids and not inst.unicast_peers:
            raise ConfigError(
                inst.where,
                f"virtual_router_id {inst.vrid} on {inst.interface} already used by "
                f"{vrids[key].name} at {vrids[key].where}",
            )
        vrids[key] = inst
        for t in inst.track_scripts:
            if t.name not in scripts:
                raise ConfigError(
                    t.where,
                    f"track_script '{t.name}' names no vrrp_script "
                    f"(defined: {', '.join(sorted(scripts)) or 'none'})",
                )
        if inst.unicast_peers and not inst.unicast_src_ip and not inst.interface:
            raise ConfigError(
                inst.where, f"vrrp_instance {inst.name}: unicast needs unicast_src_ip or interface"
            )
        if not inst.preempt and inst.initial_state == "MASTER":
            raise ConfigError(
                inst.where, f"vrrp_instance {inst.name}: nopreempt needs 'state BACKUP'"
            )
    member_of: dict[str, str] = {}
    for grp in groups:
        for m in grp.members:
            if m not in names:
                raise ConfigError(
                    grp.where, f"vrrp_sync_group {grp.name}: no vrrp_instance named '{m}'"
                )
            if m in member_of:
                raise ConfigError(
                    grp.where, f"vrrp_instance {m} is already in vrrp_sync_group {member_of[m]}"
                )
            member_of[m] = grp.name


def script_problems(cfg: Config) -> list[str]:
    """With ``enable_script_security``, scripts run by root must not be writable by others.

    keepalived refuses such scripts (a non-root user could make root run anything);
    we report them so ``--check`` fails exactly when the agent would refuse.
    """
    if not cfg.global_defs.enable_script_security:
        return []
    problems = []
    cmds: list[tuple[str, Command]] = [
        (f"vrrp_script {s.name}", s.command) for s in cfg.scripts.values() if s.command
    ]
    for inst in cfg.instances:
        for key in ("master", "backup", "fault", "stop", "any"):
            c = getattr(inst.notify, key)
            if c:
                cmds.append((f"vrrp_instance {inst.name} notify", c))
    for what, cmd in cmds:
        exe = cmd.argv[0]
        if not os.path.isabs(exe):
            continue
        p = Path(exe)
        for part in [p, *p.parents]:
            try:
                st = part.stat()
            except OSError:
                problems.append(f"{what}: {exe} does not exist")
                break
            if st.st_mode & 0o002 or (st.st_uid != 0 and part == p):
                problems.append(f"{what}: {exe} is unsafe ({part} writable by non-root)")
                break
    return problems
