"""Classify event recordings (``.npz`` files or event arrays) with a model of
an event config, the way MMPretrain's inferencers classify images.

MMPretrain's :class:`~mmpretrain.apis.ImageClassificationInferencer` reads
its inputs as images (``mmcv.imread``) and drops ``LoadImageFromFile`` from
the config's test pipeline, so it cannot read a recording; and
``mmpretrain.apis.inference_model`` picks its inferencer from a fixed table
of MMPretrain's own classes, by the model-hub task, which leaves no place to
add one (for a model built from a config it says ``No available inferencer
for the model``). :class:`EventClassificationInferencer` is MMPretrain's
classification inferencer with the input side of the event configs: the
config's ``LoadEvents`` reads each recording, the rest of its test pipeline
(``EventsToFrames``, ...) makes the frames. Models come from a config path
or from MMPretrain's ``get_model`` / ``init_model``, as for the image
inferencer.

Example::

    from sdt3_mm.apis import EventClassificationInferencer
    from sdt3_mm.reliability import safe_checkpoint_loading

    with safe_checkpoint_loading():  # runner checkpoints, weights-only
        inferencer = EventClassificationInferencer(
            'configs/demo/e-spikeformer-t_shapes-events.py',
            pretrained='work_dirs/e-spikeformer-t_shapes-events/epoch_6.pth',
            device='cpu')
    inferencer('recording.npz')[0]  # pred_label, pred_score, pred_class, ...
"""
import os
import os.path as osp

from mmengine.dataset import Compose, default_collate
from mmengine.registry import DefaultScope
from mmpretrain.apis import ImageClassificationInferencer
from mmpretrain.registry import TRANSFORMS

from sdt3_mm.datasets.events import LoadEvents, as_events, check_events

#: The types a config may give its loader (scoped or under sdt3_mm's scope).
_LOADER_TYPES = ('sdt3_mm.LoadEvents', 'LoadEvents', LoadEvents)


class EventClassificationInferencer(ImageClassificationInferencer):
    """MMPretrain's classification inferencer for event recordings.

    Inputs are recordings: paths of ``.npz`` files in the layout
    :func:`~sdt3_mm.datasets.load_events` reads (a folder: its ``.npz``
    files, sorted by name), or events in memory (a structured array with
    fields ``x, y, t, p``, e.g. tonic's, or a dict of four arrays), or a
    list of these. Each is read and checked by the config's ``LoadEvents``
    (its ``sensor_size``: times sorted, coordinates inside the sensor; the
    messages name the file, or ``input <i>`` for arrays), then goes through
    the rest of the config's test pipeline.

    Results are the image inferencer's: per recording a dict of
    ``pred_scores``, ``pred_label``, ``pred_score`` and ``pred_class``
    (the class names of ``classes``, else of the checkpoint's
    ``dataset_meta``, else of the config's test data set: its class's or
    its ``classes`` argument, a sequence or a file). There is no visualisation (no image
    to paint): ``show`` and ``show_dir`` are refused as unknown arguments.

    Args:
        model (BaseModel | str | Config): A config (path or ``Config``) of an
            event classifier, or a model from MMPretrain's ``get_model`` /
            ``init_model`` (which keep the config on the model).
        pretrained (bool | str): Checkpoint path (load runner checkpoints
            under :func:`sdt3_mm.reliability.safe_checkpoint_loading`).
            ``True``: the config's ``load_from``, else random weights with
            MMPretrain's warning. Defaults to True.
        device (str | torch.device, optional): Device to run on.
        classes (Sequence[str], optional): Class names, overriding the
            model's.
        **kwargs: Other arguments of MMPretrain's ``BaseInferencer``.

    Raises:
        ValueError: The config's test pipeline does not start with
            ``LoadEvents`` (not an event config: use MMPretrain's
            ``ImageClassificationInferencer``), or a model without its
            config.
    """

    visualize_kwargs: set = set()

    def __init__(self,
                 model,
                 pretrained=True,
                 device=None,
                 classes=None,
                 **kwargs):
        from mmengine.model import BaseModel
        if isinstance(model, BaseModel) and not hasattr(model, '_config'):
            raise ValueError(
                'EventClassificationInferencer: the model carries no config; '
                'pass the config path, or a model built by MMPretrain\'s '
                'get_model(config, pretrained=checkpoint)')
        # The config's transforms are MMPretrain's, named without a scope
        # (PackInputs): built in whatever scope is current (MMDetection's
        # after a detector was built in the process) they are not found.
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            super().__init__(
                model,
                pretrained=pretrained,
                device=device,
                classes=classes,
                **kwargs)
        if self.classes is None:
            self.classes = self._config_classes(self.config)

    @staticmethod
    def _config_classes(cfg):
        """The ``classes`` of the config's test set (a sequence, or a file
        of one name a line, as ``EventStreamDataset`` takes them), for a
        model whose checkpoint and data-set class name none; None if the
        config names none or its file is not there (no ``pred_class``
        then, as in MMPretrain)."""
        from mmengine.fileio import list_from_file
        classes = cfg.get('test_dataloader', {}).get('dataset',
                                                     {}).get('classes')
        if isinstance(classes, str):
            return tuple(
                list_from_file(classes)) if osp.isfile(classes) else None
        return tuple(classes) if classes is not None else None

    def _init_pipeline(self, cfg):
        """The config's test pipeline without its ``LoadEvents``, which
        :meth:`preprocess` runs (``self.loader``)."""
        pipeline = list(cfg.test_dataloader.dataset.pipeline)
        first = pipeline[0] if pipeline else {}
        if first.get('type') not in _LOADER_TYPES:
            raise ValueError(
                f'EventClassificationInferencer: the config\'s test pipeline '
                f'must start with sdt3_mm.LoadEvents (an event config), got '
                f'{first.get("type", "an empty pipeline")!r}; images go to '
                f'MMPretrain\'s ImageClassificationInferencer')
        self.loader = TRANSFORMS.build(first)
        return Compose([TRANSFORMS.build(t) for t in pipeline[1:]])

    def _inputs_to_list(self, inputs):
        """A folder becomes its ``.npz`` files, sorted; an array or a dict
        of arrays is one recording."""
        if isinstance(inputs, (str, os.PathLike)) and osp.isdir(inputs):
            return [
                osp.join(inputs, name) for name in sorted(os.listdir(inputs))
                if name.endswith('.npz')
            ]
        if isinstance(inputs, (list, tuple)):
            return list(inputs)
        return [inputs]

    def _load(self, index, recording):
        """``LoadEvents``' results for a path, or for events in memory."""
        if isinstance(recording, (str, os.PathLike)):
            return self.loader(dict(img_path=str(recording)))
        where = f'EventClassificationInferencer: input {index}'
        events = as_events(recording, where)
        check_events(events, self.loader.sensor_size, where)
        width, height, _ = self.loader.sensor_size
        return dict(
            events=events,
            sensor_size=self.loader.sensor_size,
            ori_shape=(height, width),
            img_shape=(height, width))

    def preprocess(self, inputs, batch_size=1):
        """Batches of the recordings through the config's pipeline."""
        samples = (self.pipeline(self._load(i, recording))
                   for i, recording in enumerate(inputs))
        yield from map(default_collate,
                       self._get_chunk_data(samples, batch_size))

    def visualize(self, ori_inputs, preds, **kwargs):
        """No visualisation: a recording is no image."""
        return None


def inference_events(model,
                     recordings,
                     pretrained=True,
                     device=None,
                     **kwargs):
    """Classify event recordings: :class:`EventClassificationInferencer`
    in one call, as ``mmpretrain.apis.inference_model`` does for images.

    Example::

        from mmpretrain.apis import get_model
        from sdt3_mm.apis import inference_events

        model = get_model('configs/demo/e-spikeformer-t_shapes-events.py',
                          pretrained='epoch_6.pth', device='cpu')
        inference_events(model, 'recording.npz')['pred_class']

    Args:
        model (BaseModel | str | Config): See
            :class:`EventClassificationInferencer`.
        recordings: One recording (path or events) or a list of them, or a
            folder of ``.npz`` files.
        pretrained (bool | str): See :class:`EventClassificationInferencer`
            (used when ``model`` is a config; a model keeps its weights).
        device (str | torch.device, optional): Device to run on.
        **kwargs: Passed to the inferencer's call (``batch_size``,
            ``return_datasamples``).

    Returns:
        dict | list[dict]: The prediction of one recording, or a list for a
        list or a folder.
    """
    from mmengine.model import BaseModel
    if isinstance(model, BaseModel):
        pretrained = False
    inferencer = EventClassificationInferencer(
        model, pretrained=pretrained, device=device)
    results = inferencer(recordings, **kwargs)
    single = not isinstance(recordings, (list, tuple)) and not (isinstance(
        recordings, (str, os.PathLike)) and osp.isdir(recordings))
    return results[0] if single else results
