"""The demo event set as an MMPretrain data set."""
from sdt3_mm.datasets.event_stream_dataset import EventStreamDataset
from sdt3_mm.registry import DATASETS
from .shapes_events import EVENT_SHAPE_CLASSES, write_event_set


@DATASETS.register_module()
class ShapesEvents(EventStreamDataset):
    """Synthetic event-camera recordings of a textured shape moving left,
    right, up or down, growing or shrinking over a textured background.

    The set is written to ``data_root`` on first use (deterministically,
    by a simulator of an event camera, see :func:`write_event_set`) and read
    as an :class:`EventStreamDataset` from then on; a set written with
    other settings is refused.

    Args:
        data_root (str): Folder of the set.
        split (str): ``'train'`` or ``'val'``.
        num_train (int): Training recordings. Defaults to 1200.
        num_val (int): Held-out recordings. Defaults to 300.
        sensor_size (Sequence[int]): ``(W, H)`` of the simulated camera.
            Defaults to ``(64, 64)``.
        duration_us (int): Length of a recording in microseconds.
            Defaults to 100000.
        seed (int): Seed of the set. Defaults to 0.
        **kwargs: Other arguments of :class:`EventStreamDataset`
            (``pipeline``, ``test_mode``, ...).
    """

    METAINFO = dict(classes=EVENT_SHAPE_CLASSES)

    def __init__(self,
                 data_root,
                 split='train',
                 num_train=1200,
                 num_val=300,
                 sensor_size=(64, 64),
                 duration_us=100_000,
                 seed=0,
                 **kwargs):
        if split not in ('train', 'val'):
            raise ValueError(f'ShapesEvents: split must be "train" or "val", '
                             f'got {split!r}')
        write_event_set(
            data_root,
            num_train=num_train,
            num_val=num_val,
            sensor_size=tuple(sensor_size),
            duration_us=duration_us,
            seed=seed)
        super().__init__(
            data_root=data_root,
            data_prefix=split,
            ann_file=f'meta/{split}.txt',
            **kwargs)
