"""YAML reading that remembers line numbers, so every inventory error can point at the line to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from conftool.errors import Problem

try:  # the C parser makes the full national inventory load several times faster
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - libyaml missing
    _BaseLoader = yaml.SafeLoader


class LineDict(dict[str, Any]):
    """A mapping that knows the line (1-based) where it started in its file."""

    line: int | None = None


class _LineLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain scalars", key_node.start_mark
            )
        if key in out:  # type: ignore[comparison-overlap]
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} in one mapping", key_node.start_mark
            )
        out[str(key) if not isinstance(key, str) else key] = loader.construct_object(value_node, deep=True)
    return out


def _construct_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Site ids are GSO codes with leading zeros ("094", "03124"): YAML 1.1 would read some of them as
# octal or integers. Timestamps are never wanted either. Keep both as strings.
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_str)


def read_yaml(path: Path, rel: str) -> tuple[Any, Problem | None]:
    """Parse one file; on failure return a Problem naming the file and the line, never raise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, Problem(rel, "", "file is missing", hint="create it or point --inventory elsewhere")
    except UnicodeDecodeError as exc:
        return None, Problem(rel, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                             hint="save the file as UTF-8 so Vietnamese names keep their diacritics")
    except OSError as exc:
        return None, Problem(rel, "", f"cannot read: {exc.strerror}")
    if not text.strip():
        return None, Problem(rel, "", "file is empty", hint="fill it in or remove it")
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        msg = " ".join(x for x in (exc.context, exc.problem) if x) or "malformed YAML"
        return None, Problem(rel, "", f"malformed YAML: {msg}", line=line,
                             hint="check indentation and quoting around that line")
    except yaml.YAMLError as exc:
        return None, Problem(rel, "", f"malformed YAML: {exc}")
    if data is None:
        return None, Problem(rel, "", "file holds no data (only comments?)", hint="fill it in or remove it")
    return data, None


def line_of(tree: Any, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest mapping reached by following ``loc`` into ``tree``."""
    line = tree.line if isinstance(tree, LineDict) else None
    node = tree
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, LineDict) and node.line:
            line = node.line
    return line


def dump_yaml(data: Any) -> str:
    """YAML for humans: keys in model order, Vietnamese kept readable (no \\u escapes)."""
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=110,
                     default_flow_style=False)


class _Dumper(yaml.SafeDumper):
    pass


def _repr_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # GSO codes ("094", "03158") are always quoted so nobody reads them as numbers.
    style = "'" if value.isdigit() else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(LineDict, lambda d, v: d.represent_dict(dict(v)))
_Dumper.add_representer(str, _repr_str)
