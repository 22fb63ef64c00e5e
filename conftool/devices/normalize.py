"""Canonical form of a device config, so intended and running can be compared line for line.

Devices print what they were given in their own way: FRR sorts routes and interfaces, adds `exit` lines and
`frr version`, hides defaults (`ip forwarding`, `link-detect`) and may print `service password-encryption`
twice; IOS adds "Building configuration…", timestamps and `!` separators; RouterOS exports carry the date,
software id and serial. The normaliser removes what is volatile or cosmetic and orders what the device
does not care about, keeping the order of what it does care about (ACL entries, firewall rules), so that
an unchanged device gives no diff and a real change is never hidden.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

IOS_LIKE = frozenset({"frr", "cisco_ios", "huawei_vrp"})
PLATFORMS = frozenset({"frr", "cisco_ios", "huawei_vrp", "mikrotik_routeros"})


@dataclass
class Node:
    """One config line and the lines nested under it (interface children, ACL entries, RouterOS items)."""

    text: str
    children: list[Node] = field(default_factory=list)

    def lines(self, depth: int = 0) -> list[str]:
        out = [" " * depth + self.text]
        for c in self.children:
            out.extend(c.lines(depth + 1))
        return out

    def same(self, other: Node) -> bool:
        return self.text == other.text and len(self.children) == len(other.children) and all(
            a.same(b) for a, b in zip(self.children, other.children, strict=True))


@dataclass
class Config:
    """A normalised config: the platform and its top-level nodes in canonical order."""

    platform: str
    nodes: list[Node]

    def text(self) -> str:
        return "".join(line + "\n" for n in self.nodes for line in n.lines())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return self.platform == other.platform and self.text() == other.text()

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Rules:
    """Per-platform knowledge: what to drop, which defaults the device hides, what must keep its order."""

    drop: tuple[re.Pattern[str], ...]  # volatile or cosmetic lines, at any depth
    hidden_defaults: tuple[re.Pattern[str], ...] = ()  # lines the device accepts but never shows
    ordered: tuple[str, ...] = ()  # sections whose children keep their order / line families that keep order
    ordered_lines: tuple[re.Pattern[str], ...] = ()  # top-level line families whose relative order matters
    # Keys printed more than once where the FIRST is the real one: FRR prints the daemons' `hostname` and then
    # vtysh's own (the Unix hostname of the vtysh process) — FRR issue #20398; only the first is config.
    single: tuple[str, ...] = ()


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


_COMMON_DROP = (
    r"^\s*$",
    r"^Building configuration",
    r"^Current configuration\s*:?",
    r"^end$",
)

RULES: dict[str, Rules] = {
    "frr": Rules(
        # `log file PATH`: where a host keeps FRR's log is the host's business (the lab's bootstrap sets it)
        drop=_rx(*_COMMON_DROP, r"^\s*!", r"^\s*exit(-address-family|-vrf|-vni)?$", r"^frr version ",
                 r"^frr defaults ", r"^service integrated-vtysh-config$", r"^log file "),
        hidden_defaults=_rx(r"^ip forwarding$", r"^ipv6 forwarding$", r"^link-detect$"),
        single=("hostname",),
    ),
    "cisco_ios": Rules(
        drop=_rx(*_COMMON_DROP, r"^\s*!", r"^\s*exit$", r"^version \d", r"^boot-(start|end)-marker$",
                 r"^ntp clock-period ", r"^\s*certificate (self-signed|ca) ", r"^\s*([0-9A-F]{8} ?)+$",
                 r"^\s*quit$", r"^enable (secret|password) ", r"^username \S+ .*(secret|password) ",
                 r"^snmp-server user "),
        hidden_defaults=_rx(r"^no shutdown$"),
        ordered=("ip access-list ", "banner "),
        ordered_lines=_rx(r"^access-list \d+ "),
        single=("hostname",),
    ),
    "huawei_vrp": Rules(
        drop=_rx(*_COMMON_DROP, r"^\s*#", r"^\s*!", r"^return$", r"^\s*quit$", r"^\s*local-user \S+ password "),
        single=("sysname",),
    ),
    "mikrotik_routeros": Rules(
        drop=_rx(r"^\s*$", r"^\s*#"),
        ordered=("/ip firewall filter", "/ip firewall nat", "/ip firewall mangle", "/ip firewall raw",
                 "/system logging"),
    ),
}

_NUM = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """'seq 10' after 'seq 5', 'lan0.10' after 'lan0.9': numbers compare as numbers."""
    return tuple((1, int(p), "") if p.isdigit() else (0, 0, p) for p in _NUM.split(text) if p)


def _rules(platform: str) -> Rules:
    try:
        return RULES[platform]
    except KeyError:
        raise ValueError(f"no normaliser for platform {platform!r}; known: {', '.join(sorted(RULES))}") from None


def _dropped(line: str, rules: Rules) -> bool:
    return any(p.search(line) for p in rules.drop)


def _parse_indented(lines: Iterable[str], rules: Rules) -> list[Node]:
    """IOS/FRR/VRP: children are indented more than their parent."""
    root: list[Node] = []
    stack: list[tuple[int, Node]] = []
    for raw in lines:
        line = raw.expandtabs().rstrip()
        if _dropped(line, rules):
            continue
        indent = len(line) - len(line.lstrip(" "))
        node = Node(line.strip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        (stack[-1][1].children if stack else root).append(node)
        stack.append((indent, node))
    return root


_ROS_TOKEN = re.compile(r'(?:[^\s"\[]+|"(?:[^"\\]|\\.)*"|\[[^\]]*\])+')
_ROS_VERBS = frozenset({"add", "set", "remove", "disable", "enable", "print", "export", "unset", "move"})
_ROS_PLAIN = re.compile(r"^[A-Za-z0-9_.:/,@+-]*$")


def _ros_item(text: str) -> str:
    """`add b=2 a="x"` -> `add a=x b=2`: RouterOS does not care about attribute order or needless quotes."""
    tokens = _ROS_TOKEN.findall(text)
    if not tokens:
        return text
    head: list[str] = []
    attrs: list[str] = []
    for t in tokens:
        if "=" in t and not t.startswith("["):
            k, _, v = t.partition("=")
            if len(v) >= 2 and v[0] == v[-1] == '"' and _ROS_PLAIN.match(v[1:-1]):
                v = v[1:-1]
            attrs.append(f"{k}={v}")
        elif attrs:
            attrs.append(t)  # a flag after attributes (rare): keep it with them
        else:
            head.append(t)
    return " ".join(head + sorted(attrs))


def _parse_routeros(lines: Iterable[str], rules: Rules) -> list[Node]:
    """RouterOS export: `/path` headers, items below; `\\` continues a line."""
    joined: list[str] = []
    buf = ""
    for raw in lines:
        line = raw.rstrip()
        if buf:
            line = buf + line.lstrip()
            buf = ""
        if line.endswith("\\"):
            buf = line[:-1]
            continue
        joined.append(line)
    if buf:
        joined.append(buf)
    sections: dict[str, Node] = {}
    order: list[Node] = []
    current: Node | None = None
    for line in joined:
        if _dropped(line, rules):
            continue
        s = line.strip()
        if s.startswith("/"):
            words = s.split(" ")
            n = next((i for i, w in enumerate(words) if w in _ROS_VERBS or "=" in w or "[" in w), len(words))
            path, rest = " ".join(words[:n]), " ".join(words[n:])
            current = sections.get(path)
            if current is None:
                current = sections[path] = Node(path)
                order.append(current)
            if rest.strip():
                current.children.append(Node(_ros_item(rest.strip())))
            continue
        item = Node(_ros_item(s))
        if current is None:
            order.append(item)
        else:
            current.children.append(item)
    return order


def _family(text: str, rules: Rules) -> str | None:
    for p in rules.ordered_lines:
        m = p.match(text)
        if m:
            return m.group(0)
    return None


def _canonical(nodes: list[Node], rules: Rules, depth: int, ordered_parent: bool) -> list[Node]:
    out: list[Node] = []
    index: dict[str, Node] = {}
    for n in nodes:
        if any(p.search(n.text) for p in rules.hidden_defaults):
            continue
        if n.text in index:  # the same section printed twice (FRR per daemon): merge, drop repeats
            index[n.text].children.extend(n.children)
            continue
        index[n.text] = n
        out.append(n)
    if depth == 0 and rules.single:
        for name in rules.single:
            same = [n for n in out if n.text.split(" ", 1)[0] == name]
            out = [n for n in out if n not in same[1:]]
    for n in out:
        keep = any(n.text.startswith(p) for p in rules.ordered)
        n.children = _canonical(n.children, rules, depth + 1, keep)
    if ordered_parent:
        return out

    def sort_key(item: tuple[int, Node]) -> tuple[tuple[tuple[int, int, str], ...], int]:
        i, n = item
        fam = _family(n.text, rules)
        return (natural_key(fam), i) if fam is not None else (natural_key(n.text), 0)

    return [n for _, n in sorted(enumerate(out), key=sort_key)]


def normalize(text: str, platform: str) -> Config:
    """Canonical tree of a config text (intended or running) for `platform`."""
    rules = _rules(platform)
    lines = text.splitlines()
    nodes = _parse_routeros(lines, rules) if platform == "mikrotik_routeros" else _parse_indented(lines, rules)
    return Config(platform, _canonical(nodes, rules, 0, False))


def normalized_text(text: str, platform: str) -> str:
    return normalize(text, platform).text()


def unified_diff(intended: str, running: str, platform: str, name: str = "device") -> str:
    """`running` -> `intended` as a unified diff of the normalised forms; empty when they agree."""
    a = normalize(running, platform).text().splitlines(keepends=True)
    b = normalize(intended, platform).text().splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, fromfile=f"{name} (running)", tofile=f"{name} (intended)"))


__all__ = ["Config", "Node", "Rules", "natural_key", "normalize", "normalized_text", "unified_diff"]
