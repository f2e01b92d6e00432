"""The reproduce pipeline end to end at a micro scale: every figure, the JSON and the claims."""

import json
from dataclasses import replace

import numpy as np
import pytest

from isacblocks import SystemParams
from isacblocks.blocks import ImpairedULA
from isacblocks.errors import ConfigError
from isacblocks.experiments import claims as claims_mod
from isacblocks.experiments import reproduce as reproduce_mod
from isacblocks.experiments.scales import SCALES, get_scale

MICRO = replace(SCALES["quick"], name="micro", iterations=8, batch_size=16, eval_points=2, eval_frames=300,
                final_eval_frames=300, labeled_ratios=(0.25,), limited_ratio=0.25, calibration_frames=(16,),
                isac_frames=100, isac_grid=3)


def test_reproduce_writes_figures_json_and_claims(tmp_path, monkeypatch):
    monkeypatch.setitem(SCALES, "micro", MICRO)
    params = SystemParams()
    record = reproduce_mod.reproduce(params, ImpairedULA.drawn(params, 3), scale="micro", out=tmp_path,
                                     log=lambda *a: None)
    for name in ("fig3.png", "fig4.png", "fig5.png", "claims.md", "results.json"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [c["id"] for c in saved["claims"]] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert all(c["held"] in (True, False) for c in saved["claims"])
    runs = record["results"]["fig3"]["runs"]
    # The SL→UL run branches off SL: identical first half, then UL.
    assert runs["SL→UL"]["curve"][0]["pmd"] == runs["SL"]["curve"][0]["pmd"]
    sweep = record["results"]["fig5"]
    assert len(next(iter(sweep.values()))["points"]) == 1 + 3 * 1 + 1  # eta=0 and eta=1 once each


def test_claim_rules_follow_the_intervals():
    a = {"pmd": 0.05, "pmd_ci": (0.04, 0.06)}
    b = {"pmd": 0.10, "pmd_ci": (0.09, 0.11)}
    c = {"pmd": 0.055, "pmd_ci": (0.045, 0.065)}
    assert claims_mod.better(a, b) and not claims_mod.better(b, a)
    assert claims_mod.like(a, c) and claims_mod.like(c, a) and not claims_mod.like(b, a)


def test_unknown_scale_is_rejected():
    with pytest.raises(ConfigError, match="quick"):
        get_scale("huge")
    assert np.isclose(get_scale("paper").lr_sl, 4e-7)
