"""Extract the command-line flag names a serving tool's own argument parser defines, from its
source (a downloaded wheel), for tests/data/launch-flags/ (docs/launch.md says how to refresh).

    python scripts/extract_flags.py vllm WHEEL > tests/data/launch-flags/vllm.json
    python scripts/extract_flags.py sglang WHEEL > tests/data/launch-flags/sglang.json

vLLM: every string starting with "-" passed to an `add_argument` call in vllm/engine/arg_utils.py
and vllm/entrypoints/**/cli_args.py (`vllm serve`'s parser). SGLang: its ServerArgs fields
(sglang/srt/arg_groups/fields/*.py: the field `tp_size` is the flag `--tp-size`, plus each
field's `aliases=[...]`) and any literal `add_argument` flag in sglang/srt/server_args.py.
Standard library only; nothing of the wheel is imported or run.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
import zipfile


def _add_argument_flags(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            for a in node.args:
                if isinstance(a, ast.Constant) and isinstance(a.value, str):
                    if a.value.startswith("-"):
                        out.add(a.value)
    return out


def _sglang_fields(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for st in cls.body:
            if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
                name = st.target.id
                if name.startswith("_"):
                    continue
                out.add("--" + name.replace("_", "-"))
                for kw in (k for k in ast.walk(st.annotation) if isinstance(k, ast.keyword)):
                    if kw.arg == "aliases" and isinstance(kw.value, (ast.List, ast.Tuple)):
                        out |= {
                            e.value
                            for e in kw.value.elts
                            if isinstance(e, ast.Constant) and isinstance(e.value, str)
                        }
    return out


def extract(tool: str, wheel: str) -> dict[str, object]:
    flags: set[str] = set()
    sources: list[str] = []
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            if tool == "vllm":
                pick = name == "vllm/engine/arg_utils.py" or re.fullmatch(
                    r"vllm/entrypoints/(.+/)?cli_args\.py", name
                )
            else:
                pick = name == "sglang/srt/server_args.py" or re.fullmatch(
                    r"sglang/srt/arg_groups/fields/[^/]+\.py", name
                )
            if not pick:
                continue
            tree = ast.parse(z.read(name))
            sources.append(name)
            flags |= _add_argument_flags(tree)
            if tool == "sglang" and "/fields/" in name:
                flags |= _sglang_fields(tree)
    digest = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
    return {
        "tool": tool,
        "origin": f"PyPI wheel {wheel.rsplit('/', 1)[-1]} (sha256 {digest})",
        "licence": "Apache-2.0 (the wheel's dist-info LICENSE); only flag names are kept here",
        "extracted_from": sources,
        "flags": sorted(flags),
    }


if __name__ == "__main__":
    print(json.dumps(extract(sys.argv[1], sys.argv[2]), indent=1))
