"""Which health policy `tuner launch --recheck` uses: a report is a file anyone can edit, so
the policy it names is used only when it is one tuner ships (checks/); any other needs
--gate-policy (docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import BadInput
from agent.launch.run import recheck_policy
from agent.paths import share_dir


def test_shipped_policy_named_by_the_report_is_used() -> None:
    shipped = share_dir("checks") / "default.yml"
    assert Path(recheck_policy(str(shipped), None).file).resolve() == shipped.resolve()
    assert recheck_policy(None, None).file  # no policy named: the default


def test_a_policy_of_the_reports_own_is_refused(tmp_path: Path) -> None:
    lax = tmp_path / "lax.yml"
    lax.write_text((share_dir("checks") / "default.yml").read_text())
    with pytest.raises(BadInput) as e:
        recheck_policy(str(lax), None)
    assert e.value.field == "--gate-policy" and str(lax) in str(e.value)
    # a path that climbs out of checks/ is not one of tuner's either
    sneaky = str(share_dir("checks") / ".." / "tests" / "lax.yml")
    with pytest.raises(BadInput):
        recheck_policy(sneaky, None)
    # named explicitly by the operator, it is used
    assert Path(recheck_policy(None, str(lax)).file) == lax
