"""BMC variables of an inventory: the documented names are the ones tuner reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, run_tuner

from agent.errors import BadInput
from agent.inventory import load_inventory


def test_example_fleet_gives_every_host_a_bmc_url() -> None:
    for f in ("inventory/example-fleet.yml", "inventory/example-fleet.ini"):
        inv = load_inventory(REPO / f)
        assert all(str(h.vars.get("bmc_url", "")).startswith("https://") for h in inv.hosts), f
        assert not any("bmc_address" in h.vars for h in inv.hosts)
    doc = (REPO / "docs/inventory.md").read_text()
    assert "`bmc_url`" in doc and "`bmc_system`" in doc


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("n1 ansible_host=127.0.0.1 bmc_address=10.0.0.9", ["bmc_address", "bmc_url: https://10.0.0.9"]),
        ("n1 ansible_host=127.0.0.1 bmc_url=https://b bmc_system='a b'", ["bmc_system", "'a b'"]),
    ],
)
def test_bad_bmc_variables_exit_2(tmp_path: Path, line: str, words: list[str]) -> None:
    inv = tmp_path / "inv.ini"
    inv.write_text(f"[all]\n{line}\n")
    with pytest.raises(BadInput):
        load_inventory(inv)
    r = run_tuner("apply", "-p", "inference", "-i", str(inv), "--check", state=tmp_path / "s")
    assert r.rc == 2 and "Traceback" not in r.err, r.err
    for w in words:
        assert w in r.err, (w, r.err)
