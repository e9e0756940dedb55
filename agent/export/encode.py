"""One encoder per consumer: a value that came from a node (a reason, a serial, a firmware
version, anything in a report) is data in the consumer's syntax, never syntax, or the
export refuses it (BadInput, exit 2, naming the node and field). docs/security.md,
"Threat model", lists the consumers.

- shell (Slurm's sourced file): `shell_word` quotes with shlex.quote and refuses control
  characters (a raw newline or escape sequence has no business in a sourced file);
  `shell_comment` refuses them in comment text (a newline would end the comment);
- Ansible inventory: `ansible_unsafe` marks a string so Ansible never renders it as a
  template (YAML `!unsafe`, JSON `{"__ansible_unsafe": ...}`: Ansible's own encodings);
- CSV: `csv_line` quotes (RFC 4180) every cell that holds a separator, a quote or any
  control character, writes other control characters as visible escapes, and neutralises
  spreadsheet formulas (OWASP "CSV Injection": a leading = + - @ tab CR gets a quote);
- Prometheus: label values through prometheus_client, which escapes `\\`, `"` and newline as
  the text exposition format says; `prom_label` is the same rule, for tests and callers;
- hostfiles and host lists: `hostname` refuses anything that is not a host name or address.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import yaml

from agent.errors import BadInput, short

# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators (which
# str.splitlines and some editors treat as line breaks).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")
HOSTNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}\Z")
ADDRESS = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9._-]{0,252}|\[?[0-9A-Fa-f:.]{2,45}\]?)\Z")
RENDER_NODE = re.compile(r"^/dev/dri/renderD[0-9]{1,6}\Z")


def _refuse(value: str, where: str, consumer: str) -> BadInput:
    m = CONTROL.search(value)
    ch = f"U+{ord(m.group()):04X}" if m else "?"
    return BadInput(
        f"{short(value, 80)!r} holds a control character ({ch}): refused, it would be "
        f"syntax in the {consumer}",
        field=where,
    )


# ------------------------------------------------------------------------------ shell


def shell_word(value: str, where: str) -> str:
    """One POSIX shell word (shlex.quote) for a sourced file: no control characters."""
    if CONTROL.search(value):
        raise _refuse(value, where, "shell file")
    return shlex.quote(value)


def shell_comment(value: str, where: str) -> str:
    """Text after `# `: one line, no control characters."""
    if CONTROL.search(value):
        raise _refuse(value, where, "shell file")
    return value


def hostname(value: str, where: str) -> str:
    """A host name or address as written in a hostfile, a host list or a command line: the
    inventory's rule (letters, digits, '.', '-', '_'; IP addresses), nothing else."""
    if not isinstance(value, str) or not ADDRESS.match(value):
        raise BadInput(
            f"{short(value, 80)!r} is not a host name or IP address (letters, digits, '.', "
            "'-', '_'): refused",
            field=where,
        )
    return value


USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}\Z")


def user_name(value: str, where: str) -> str:
    if not isinstance(value, str) or not USER.match(value):
        raise BadInput(f"{short(value, 80)!r} is not a user name: refused", field=where)
    return value


def render_node(value: str, where: str) -> str:
    if not RENDER_NODE.match(value):
        raise BadInput(f"{short(value, 80)!r} is not /dev/dri/renderD<N>: refused", field=where)
    return value


# ------------------------------------------------------------------------------ Ansible


class Unsafe(str):
    """A string Ansible must never template: dumped as `!unsafe '...'` in YAML."""


def _unsafe_representer(dumper: yaml.SafeDumper, data: Unsafe) -> yaml.ScalarNode:
    return dumper.represent_scalar("!unsafe", str(data), style="'")


class AnsibleDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """libyaml's dumper when PyYAML has it (the pure-Python one takes a minute on 10,000
    hosts), with `Unsafe` strings tagged !unsafe."""


AnsibleDumper.add_representer(Unsafe, _unsafe_representer)


# What a YAML double-quoted scalar must escape beyond JSON's escapes (which it shares: \" \\
# \b \f \n \r \t \uXXXX): characters outside YAML's printable set (DEL, C1, surrogates,
# U+FFFE/U+FFFF), the byte order mark, and YAML 1.1's line breaks NEL, LS and PS (raw, they
# would be folded into a space inside the quotes).
_YAML_ESCAPE = re.compile(r"[\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
# A plain (unquoted) scalar that YAML 1.1 reads back as this same string: a letter or '_'
# first (so never a number, a date or .inf), then host-name characters; the words YAML 1.1
# resolves to booleans or null are quoted.
_YAML_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,252}\Z")
_YAML_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def _u(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def yaml_str(value: str, unsafe: bool = False) -> str:
    """One string as a YAML scalar that reads back as exactly `value`: plain when that is
    certain, else double-quoted (JSON's escaping plus _YAML_ESCAPE); `!unsafe` first when
    marked. Checked against PyYAML's own dumper and loader in tests/test_export_fast.py."""
    if unsafe:
        return "!unsafe " + _YAML_ESCAPE.sub(_u, json.dumps(value, ensure_ascii=False))
    if _YAML_PLAIN.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return _YAML_ESCAPE.sub(_u, json.dumps(value, ensure_ascii=False))


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, str):
        return yaml_str(value, isinstance(value, Unsafe))
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    raise TypeError(f"no YAML form for {type(value).__name__} here")


def yaml_block(doc: dict[str, Any]) -> str:
    """`doc` (mappings with string keys, lists, strings, Unsafe, ints, bools, None) as
    block-style YAML, the layout PyYAML's dumper gives (lists at their key's indentation,
    `{}`/`[]` for empty ones), written directly: PyYAML's representer is pure Python and
    took over a second for a 10,000-host inventory (bench/export_bench.py)."""
    out: list[str] = []
    _yaml_map(doc, 0, out)
    return "".join(out)


def _yaml_map(m: dict[str, Any], ind: int, out: list[str]) -> None:
    pad = " " * ind
    for k, v in m.items():
        key = yaml_str(k)
        if isinstance(v, dict) and v:
            out.append(f"{pad}{key}:\n")
            _yaml_map(v, ind + 2, out)
        elif isinstance(v, list) and v:
            out.append(f"{pad}{key}:\n")
            _yaml_list(v, ind, out)
        elif isinstance(v, dict | list):
            out.append(f"{pad}{key}: {'{}' if isinstance(v, dict) else '[]'}\n")
        else:
            out.append(f"{pad}{key}: {_yaml_scalar(v)}\n")


def _yaml_list(items: list[Any], ind: int, out: list[str]) -> None:
    pad = " " * ind
    for v in items:
        if isinstance(v, dict | list):
            raise TypeError("nested collections in a list: not needed by the inventory")
        out.append(f"{pad}- {_yaml_scalar(v)}\n")


def ansible_unsafe(value: Any) -> Any:
    """Every string inside `value` (lists and mappings walked) marked unsafe."""
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, list):
        return [ansible_unsafe(v) for v in value]
    if isinstance(value, dict):
        return {k: ansible_unsafe(v) for k, v in value.items()}
    return value


def ansible_json(value: Any) -> Any:
    """The JSON form of unsafe marking (Ansible's AnsibleJSONDecoder reads
    {"__ansible_unsafe": "..."} as an unsafe string; the yaml plugin reads JSON with it)."""
    if isinstance(value, Unsafe):
        return {"__ansible_unsafe": str(value)}
    if isinstance(value, list):
        return [ansible_json(v) for v in value]
    if isinstance(value, dict):
        return {k: ansible_json(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------ CSV

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_CSV_QUOTE = re.compile(r'[",\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]')
_CSV_ESCAPE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u0085]")


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def csv_cell(value: object) -> str:
    """One cell: formulas neutralised, control characters other than tab/CR/LF written as
    visible escapes (\\x1b), quoted when it holds a quote, comma or control character."""
    s = "" if value is None else str(value)
    if s.startswith(FORMULA_START):
        s = "'" + s
    if _CSV_QUOTE.search(s):
        s = _CSV_ESCAPE.sub(_visible, s)
        return '"' + s.replace('"', '""') + '"'
    return s


def csv_line(cells: list[object]) -> str:
    line = ",".join(csv_cell(c) for c in cells)
    return (line or '""') + "\n"  # one empty cell: quoted, else it reads as no cell


# ------------------------------------------------------------------------------ Prometheus


def prom_label(value: str) -> str:
    """A label value in the text exposition format: backslash, double quote and line feed
    escaped (the three escapes the format defines; prometheus_client does the same)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
