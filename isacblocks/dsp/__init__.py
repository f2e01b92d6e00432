"""The physics as pure functions of numpy arrays, batch first (paper eq. numbers in docstrings)."""

from .channels import complex_normal, frame_noise, target_echo, ue_channel_frequency_response, ue_received
from .comm import constellation, ml_demap, symbol_error_rate_qpsk
from .detection import proportion_interval, threshold_at_pfa, threshold_interval
from .maprt import maprt
from .precoder import beampattern_precoder, isac_precoder
from .receiver import reciprocal_filter
from .scenario import draw_targets, training_sectors
from .spacing import check_spacing, draw_spacing, load_spacing, save_spacing
from .steering import delay_steering, element_positions, range_steering, ula_steering

__all__ = [
    "ula_steering", "delay_steering", "range_steering", "element_positions",
    "beampattern_precoder", "isac_precoder",
    "complex_normal", "frame_noise", "target_echo", "ue_channel_frequency_response", "ue_received",
    "reciprocal_filter", "maprt",
    "constellation", "ml_demap", "symbol_error_rate_qpsk",
    "threshold_at_pfa", "threshold_interval", "proportion_interval",
    "draw_spacing", "check_spacing", "load_spacing", "save_spacing",
    "training_sectors", "draw_targets",
]
