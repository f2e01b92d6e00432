"""The SNR study: physics at the ends of the SNR range, option parsing, the command end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from isacblocks import SystemParams
from isacblocks.blocks import ImpairedULA
from isacblocks.cli import main
from isacblocks.dsp.spacing import save_spacing
from isacblocks.errors import ConfigError
from isacblocks.experiments.snr import parse_snrs, snr_sweep

FRAMES = 2000


@pytest.fixture(scope="module")
def sweep():
    params = SystemParams()
    ula = ImpairedULA.drawn(params, 3)
    spacings = {"known": ula.spacing, "lambda/2": params.nominal_spacing}
    return params, snr_sweep(params, ula.spacing, spacings, (-40.0, 0.0, 10.0, 20.0), FRAMES, seed=5)


def test_without_signal_the_target_is_missed_with_probability_one_minus_pfa(sweep):
    """At SNR_r = -40 dB the echo is 1e-4 of the noise: detections are false alarms, Pmd = 1 - Pfa.
    Binomial spread of the H1 count and of the threshold's H0 quantile, 2 000 frames each: 4 sigma."""
    params, result = sweep
    sigma = np.sqrt(2 * params.pfa * (1 - params.pfa) / FRAMES)
    for curve in result.values():
        assert abs(curve["pmd"][0] - (1 - params.pfa)) < 4 * sigma


def test_misdetection_falls_with_snr_and_the_known_spacing_leads(sweep):
    params, result = sweep
    for curve in result.values():
        pmd = np.array(curve["pmd"])
        assert np.all(np.diff(pmd) < 0), pmd  # common random numbers: the same noise at every SNR
    known, nominal = result["known"], result["lambda/2"]
    # At 20 dB the known spacing's Pmd interval lies below lambda/2's (1.7 mm spacing error).
    assert known["pmd_ci"][-1][1] < nominal["pmd_ci"][-1][0]
    assert known["rmse_position"][-1] < nominal["rmse_position"][-1]
    assert known["position_error_mm"] == 0.0 and nominal["position_error_mm"] > 10


def test_snr_lists_parse_and_bad_ones_are_named():
    assert parse_snrs("0:20:5") == (0.0, 5.0, 10.0, 15.0, 20.0)
    assert parse_snrs("3,-2.5") == (3.0, -2.5)
    for bad in ("0:20:0", "20:0:2", "x", "1,,2", "nan"):
        with pytest.raises(ConfigError, match="--snr"):
            parse_snrs(bad)


def test_snr_sweep_command_writes_json_and_figure(tmp_path, capsys):
    params = SystemParams()
    learned = tmp_path / "learned.txt"
    save_spacing(learned, params.nominal_spacing * 1.001)
    out = tmp_path / "snr"
    assert main(["snr-sweep", "--learned", str(learned), "--frames", "300", "--snr", "0,15", "--workers", "0",
                 "--out", str(out)]) == 0
    record = json.loads((out / "snr.json").read_text())
    assert record["snr_db"] == [0.0, 15.0]
    assert set(record["results"]) == {"known d", "lambda/2", f"learned ({learned})"}
    assert (out / "snr.png").stat().st_size > 0
    assert "Pmd at Pfa 0.01" in capsys.readouterr().out
