"""sdt3_mm.EventVisualizationHook's rendering of event frames (the hook on
the event demo with tools/test.py --show-dir: tests/test_tools/
test_test_tool_outputs.py)."""
import pytest
import torch

from sdt3_mm.engine import render_event_frames


def test_on_events_red_off_events_blue_scaled_to_the_largest_count():
    frames = torch.zeros(3, 2, 4, 5)
    frames[0, 1, 0, 0] = 2  # ON, twice, in two frames
    frames[2, 1, 0, 0] = 2
    frames[1, 0, 3, 4] = 1  # OFF, once
    image = render_event_frames(frames)
    assert image.dtype == torch.uint8 and image.shape == (3, 4, 5)
    assert image[:, 0, 0].tolist() == [255, 0, 0]
    assert image[:, 3, 4].tolist() == [0, 0, 64]
    assert image.sum() == 255 + 64


def test_one_polarity_is_grey_and_no_event_is_black():
    frames = torch.zeros(2, 1, 3, 3)
    assert render_event_frames(frames).sum() == 0
    frames[1, 0, 1, 1] = 5
    assert render_event_frames(frames)[:, 1, 1].tolist() == [255] * 3


@pytest.mark.parametrize('shape', [(2, 32, 32), (4, 3, 8, 8)])
def test_other_inputs_are_refused_with_their_shape(shape):
    with pytest.raises(
            ValueError,
            match=r'expected event frames \(T, P, H, W\) with 1 or 2 '
            rf'polarities, got inputs of shape \({shape[0]}, '):
        render_event_frames(torch.zeros(shape))
