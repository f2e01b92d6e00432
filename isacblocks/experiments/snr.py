"""SNR study: Pmd at ``params.pfa`` and position RMSE vs the radar SNR (``SNR_r = K sigma_r^2 / N0``)
for the MB-ML receiver assuming the known spacing, lambda/2, and a learned spacing.

Every (spacing, SNR) point is one `spacing_evaluation` (test sector, fresh H0 and H1 frames);
all points draw from the same seed (common random numbers: the noise is the same at every
point, only the target's power changes), so the curves are smooth and their differences
are the spacing's and the SNR's.  All points run as one executor map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..dsp.spacing import spacing_errors
from ..errors import ConfigError
from ..safeio import save_figure
from ..sim.evaluation import run_evaluations, spacing_evaluation

DEFAULT_SNRS_DB = tuple(float(x) for x in range(0, 21, 2))
MAX_SNR_POINTS = 1000


def parse_snrs(text: str) -> tuple[float, ...]:
    """``"0:20:2"`` (start:stop:step, stop included) or ``"0,5,10"`` -> SNRs in dB."""
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if not step > 0 or not stop >= start:
                raise ValueError
            if (stop - start) / step + 1 > MAX_SNR_POINTS:
                raise OverflowError
            values = np.arange(start, stop + step / 2, step)
        else:
            values = np.array([float(x) for x in text.split(",")])
    except OverflowError:
        raise ConfigError(f"--snr {text!r}: more than {MAX_SNR_POINTS} points (use a larger step)") from None
    except ValueError:
        raise ConfigError(f"--snr {text!r}: expected start:stop:step (step > 0) or a comma list of dB values") from None
    if not np.all(np.isfinite(values)) or values.size == 0:
        raise ConfigError(f"--snr {text!r}: expected finite dB values")
    return tuple(float(v) for v in values)


def snr_sweep(params, true_spacing, spacings: dict, snrs_db, frames_per_hypothesis: int, seed=0, executor=None,
              progress=None) -> dict:
    """``{label: {"snr_db", "pmd", "pmd_ci", "rmse_position", "threshold", spacing errors}}`` for each
    assumed spacing in `spacings`, each list over `snrs_db`."""
    evaluations = {(label, snr): spacing_evaluation(params.replace(snr_radar_db=snr), true_spacing, spacing,
                                                    frames_per_hypothesis, seed=seed)
                   for label, spacing in spacings.items() for snr in snrs_db}
    named = {f"{label} @ {snr:g} dB": evaluation for (label, snr), evaluation in evaluations.items()}
    reports = run_evaluations(named, executor, progress)
    out = {}
    for label, spacing in spacings.items():
        rows = [reports[f"{label} @ {snr:g} dB"] for snr in snrs_db]
        out[label] = {"snr_db": list(snrs_db), "pmd": [r.pmd for r in rows], "pmd_ci": [r.pmd_ci for r in rows],
                      "rmse_position": [r.rmse_position for r in rows], "threshold": [r.threshold for r in rows],
                      "frames_per_hypothesis": frames_per_hypothesis,
                      **spacing_errors(spacing, true_spacing)}
    return out


def plot_snr(result: dict, path: Path, pfa: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, curve in result.items():
        ci = np.asarray(curve["pmd_ci"]).T
        pmd = np.asarray(curve["pmd"])
        ax1.errorbar(curve["snr_db"], pmd, yerr=[pmd - ci[0], ci[1] - pmd], marker="o", ms=3, capsize=2, label=label)
        ax2.plot(curve["snr_db"], curve["rmse_position"], marker="o", ms=3, label=label)
    ax1.set_yscale("log")
    ax1.set_ylabel(f"P_md at P_fa = {pfa:g}")
    ax1.set_title("misdetection vs radar SNR (MB-ML receiver)")
    ax2.set_yscale("log")
    ax2.set_ylabel("position RMSE (m), detected targets")
    ax2.set_title("positioning vs radar SNR")
    for ax in (ax1, ax2):
        ax.set_xlabel("SNR_r (dB)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    try:
        save_figure(figure, path, dpi=120)
    finally:
        plt.close(figure)
