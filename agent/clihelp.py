"""The CLI's help conventions, applied once to every command (agent/cli/__init__.py `main`).

- A value option shows what it takes (`--forks N`, `--reboot never|if-needed`), never a
  type tag (`<int>`); a flag shows nothing.
- Every command's help ends with an example (EXAMPLES, keyed by the command's path).
- Help is plain text wrapped at 80 columns (click's formatter; no rich boxes), which also
  keeps `tuner --help` from importing rich.

A new option gets its placeholder from METAVARS (by option name), else from its type; a
new command adds one line to EXAMPLES (tests/test_cli.py checks both).
"""

from __future__ import annotations

from typing import Any

# Options whose value is one of a few words: listed in the help (the command validates).
CHOICES: dict[str, tuple[str, ...]] = {
    "--reboot": ("never", "if-needed"),
    "--connection": ("auto", "ssh", "local"),
    "--bmc-vendor": ("dell", "hpe", "supermicro", "amd", "mixed", "none"),
    "--runtime": ("bare", "controller"),
    "--nic-model": ("pollara-400", "thor2", "connectx-7"),
}

# What a value option takes, by option name; others: N (int), SECONDS (float), TEXT.
METAVARS: dict[str, str] = {
    "--profile": "NAME|FILE",
    "--inventory": "FILE",
    "--limit": "PATTERN",
    "--executors": "HOSTS",
    "--state-dir": "DIR",
    "--ca-bundle": "FILE",
    "--root": "DIR",
    "--facts": "FILE",
    "--policy": "FILE",
    "--output": "FILE",
    "--scenario": "NAME",
    "--layer": "NAME",
    "--from": "REPORT",
    "--since": "REPORT",
    "--html": "FILE",
    "--head": "NODE",
    "--template": "NAME|FILE",
    "--per-node": "DIR",
    "--field": "KEY=VALUE",
    "--textfile-dir": "DIR",
    "--events": "netlink|sim|none",
    "--wheelhouse": "DIR",
    "--allow-boot-critical": "PARAM",
    "--node": "NAME",
}

# One example per command (its path without "tuner"), shown at the end of its help.
EXAMPLES: dict[str, list[str]] = {
    "": ["tuner sim up --nodes 8 && tuner apply --profile inference --check"],
    "apply": [
        "tuner apply --profile inference --check      # what would change",
        "tuner apply -p inference --reboot if-needed --batch-size 4",
    ],
    "verify": ["tuner verify --profile inference --limit 'node0*'"],
    "rollback": ["tuner rollback --check                       # what would be restored"],
    "facts": ["tuner facts --limit node01 --json > node01-facts.json"],
    "check": ["tuner check --min-gpus-per-node 8 --output usable-gpus.json"],
    "status": ["tuner status --json"],
    "provision": [
        "tuner provision --check            # what each node has, what would change",
        "tuner provision --limit 'node0*' --wheelhouse /srv/tuner-wheels",
    ],
    "ready": ["tuner ready --profile inference --min-gpus-per-node 7 --output ready.json"],
    "report": [
        "tuner report --from check.json --from verify.json --html fleet.html",
        "tuner report --from ready.json --since last-good.json --html fleet.html",
    ],
    "export": [
        "tuner export --from ready.json --format slurm --output fleet.sh",
        "tuner export --from ready.json -f prometheus --per-node prom/",
    ],
    "launch": [
        "tuner launch --from ready.json --template probe --dry-run",
        "tuner launch --from ready.json -- ./run.sh --rank {node_rank}",
    ],
    "profiles": ["tuner profiles show inference-nps4"],
    "profiles list": ["tuner profiles list --json"],
    "profiles show": ["tuner profiles show inference-nps4"],
    "sim": ["tuner sim up --nodes 8 --cores-per-socket 8"],
    "sim up": ["tuner sim up --nodes 8 --cores-per-socket 8 --state-dir /tmp/lab"],
    "sim down": ["tuner sim down --state-dir /tmp/lab"],
    "sim reboot": ["tuner sim reboot node03"],
    "sim event": [
        "tuner sim event node01 cpufreq-load             # a late cpufreq driver",
        "tuner sim event node01 cpu-online 5",
    ],
    "agent": ["tuner agent install && tuner agent status"],
    "agent run": ["tuner agent run --once --root /tmp/lab/sim/node01 --events none"],
    "agent install": ["tuner agent install --limit 'node0*' --check"],
    "agent remove": ["tuner agent remove --limit node03"],
    "agent status": ["tuner agent status --json"],
    "capture": [
        "tuner capture --output bundles/ --archive --redact-serials",
        "tuner capture --local --bmc-url https://bmc1 --bmc-username admin -o /tmp/t",
    ],
    "sim scenarios": ["tuner sim scenarios && tuner sim up --scenario mlperf-llama2-70b"],
}


def _metavar(opt: Any) -> str:
    name = max(opt.opts, key=len)
    if name in CHOICES:
        return "|".join(CHOICES[name])
    if name in METAVARS:
        return METAVARS[name]
    kind = getattr(getattr(opt, "type_descriptor", None), "annotation", None)
    text = repr(kind) + repr(getattr(opt, "type", ""))
    if "float" in text.lower():
        return "SECONDS" if any(w in name for w in ("timeout", "delay", "deadline")) else "X"
    if "int" in text.lower():
        return "N"
    return name.lstrip("-").upper().replace("-", "_")


def apply_conventions(cmd: Any, path: str = "") -> None:
    """Set placeholders and examples on a click command tree (typer.main.get_command)."""
    for p in cmd.params:
        if p.metavar is not None:
            continue
        if p.param_type_name == "argument":
            p.metavar = p.name.upper()
            p.display_type_rich = lambda ctx: None  # typer appends `<str>` to arguments
        elif p.param_type_name == "option" and not p.is_flag and not p.count:
            p.metavar = _metavar(p)
    # A flag left unset is None, which typer coerces through a pydantic TypeAdapter (importing
    # pydantic, ~0.1 s); False is taken as is. The help option is made on first use: make it.
    help_opt = cmd.get_help_option(cmd.context_class(cmd))
    for p in [*cmd.params, help_opt]:
        kind = getattr(getattr(p, "type_descriptor", None), "annotation", None)
        if p is not None and kind is bool and p.default is None:
            p.default = False
    example = EXAMPLES.get(path)
    if example and not cmd.epilog:
        lines = "\n".join(f"  {e}" for e in example)
        cmd.epilog = f"Example{'s' if len(example) > 1 else ''}:\n\n\b\n{lines}"
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        if not sub.short_help and sub.help:
            # The whole first paragraph, wrapped, instead of a line cut with "...".
            sub.short_help = " ".join(sub.help.split("\n\n")[0].split())
        apply_conventions(sub, f"{path} {name}".strip())
