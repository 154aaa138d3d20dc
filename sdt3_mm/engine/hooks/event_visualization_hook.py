"""MMPretrain's visualization hook for event-frame inputs."""
import torch
from mmpretrain.engine.hooks import VisualizationHook

from sdt3_mm.registry import HOOKS


def render_event_frames(frames):
    """One RGB image of a recording's event frames, summed over time.

    Args:
        frames (torch.Tensor): ``(T, P, H, W)`` event counts (or binary
            frames), ``P`` polarities as ``sdt3_mm.EventsToFrames`` makes
            them: channel 0 the OFF events, channel 1 the ON events; one
            channel for a one-polarity sensor.

    Returns:
        torch.Tensor: ``(3, H, W)`` uint8, black where no event fell; ON
        events red, OFF events blue (both: magenta), one polarity white,
        each at a brightness proportional to its count (the largest
        count of the image at 255).

    Raises:
        ValueError: If ``frames`` is not ``(T, P, H, W)`` with ``P`` 1 or
            2.
    """
    if frames.dim() != 4 or frames.shape[1] not in (1, 2):
        raise ValueError(
            'EventVisualizationHook: expected event frames (T, P, H, W) '
            f'with 1 or 2 polarities, got inputs of shape '
            f'{tuple(frames.shape)}')
    counts = frames.detach().float().abs().sum(dim=0).cpu()
    peak = counts.max()
    if peak > 0:
        counts = counts / peak
    counts = (counts * 255).round().to(torch.uint8)
    if counts.shape[0] == 1:
        return counts.expand(3, -1, -1).clone()
    off, on = counts
    return torch.stack([on, torch.zeros_like(on), off])


@HOOKS.register_module()
class EventVisualizationHook(VisualizationHook):
    """:class:`mmpretrain.engine.hooks.VisualizationHook` for classifiers of
    event recordings.

    MMPretrain's hook paints ``data_batch['inputs']`` as ``(C, H, W)``
    images, but an event classifier's inputs are ``(T, P, H, W)`` frames,
    on which it fails. This hook paints each recording as
    :func:`render_event_frames` does (time-summed, ON red, OFF blue) and
    otherwise behaves as MMPretrain's: the same arguments (``enable``,
    ``interval`` in samples, ``show``, ``out_dir`` and the
    ``visualize_cls`` arguments such as ``rescale_factor``), switched on by
    ``tools/test.py --show`` / ``--show-dir`` as MMPretrain's is, one
    image per painted sample named after its recording file.

    Args:
        **kwargs: Arguments of MMPretrain's ``VisualizationHook``.
    """

    def _draw_samples(self, batch_idx, data_batch, data_samples, step=0):
        if self.enable is False:
            return
        images = [render_event_frames(x) for x in data_batch['inputs']]
        super()._draw_samples(batch_idx, {
            **data_batch, 'inputs': images
        }, data_samples, step)
