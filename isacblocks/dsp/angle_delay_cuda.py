"""Former home of the CUDA search's device check, kept for the importers not yet on
`isacblocks.dsp.angle_delay` (``check_device`` is `angle_delay.resolve_device`)."""

from .angle_delay import DEVICES, angle_delay_peak_cuda
from .angle_delay import resolve_device as check_device

__all__ = ["DEVICES", "angle_delay_peak_cuda", "check_device"]
