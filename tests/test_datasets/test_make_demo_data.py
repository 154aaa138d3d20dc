"""tools/misc/make_demo_data.py writes each layout as its demo configs read
it: with no options, every config given ``data_root=OUT`` accepts the set."""
import glob
import importlib.util
import inspect
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'misc', 'make_demo_data.py')


def _tool():
    spec = importlib.util.spec_from_file_location('make_demo_data', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _registry(cfg):
    scope = cfg.default_scope
    return scope, importlib.import_module(f'{scope}.registry').DATASETS


def _config_datasets(config):
    """The config's distinct data set configs (train, val, test)."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    found = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if loader in cfg and cfg[loader] is not None:
            dataset = cfg[loader].dataset
            if dataset not in found:
                found.append(dataset)
    return cfg, found


def test_every_demo_config_is_served_by_one_layout():
    tool = _tool()
    served = {c for _, configs, _ in tool.LAYOUTS.values() for c in configs}
    demo = {
        osp.relpath(path, ROOT)
        for path in glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py'))
    }
    assert served == demo


@pytest.mark.parametrize('layout', ['cls', 'coco', 'ade20k', 'events'])
def test_defaults_are_the_configs_data_set_arguments(layout):
    """Counts included, which the writing test below shrinks."""
    tool = _tool()
    _, configs, defaults = tool.LAYOUTS[layout]
    for config in configs:
        cfg, datasets = _config_datasets(config)
        scope, registry = _registry(cfg)
        for dataset in datasets:
            with DefaultScope.overwrite_default_scope(scope):
                cls = registry.get(dataset.type)
            params = inspect.signature(cls.__init__).parameters
            for key, (_, argument) in tool.OPTIONS.items():
                if argument not in params:
                    assert key not in defaults, (config, key)
                    continue
                used = dataset.get(argument, params[argument].default)
                assert defaults[key] == used, (config, argument)


@pytest.mark.parametrize('layout', ['cls', 'coco', 'ade20k', 'events'])
def test_default_output_is_accepted_by_the_demo_configs(layout, tmp_path):
    tool = _tool()
    out = str(tmp_path / layout)
    # Small counts, given to the data sets alike; every other setting is
    # the tool's default on one side and the config's on the other.
    tool.main([layout, out, '--num-train', '3', '--num-val', '2'])
    for config in tool.LAYOUTS[layout][1]:
        cfg, datasets = _config_datasets(config)
        scope, registry = _registry(cfg)
        for dataset_cfg in datasets:
            dataset_cfg = dataset_cfg.copy()
            dataset_cfg.update(data_root=out, num_train=3, num_val=2)
            with DefaultScope.overwrite_default_scope(scope):
                dataset = registry.build(dataset_cfg)
                # The pipeline reads the files (and checks labels).
                assert dataset[0] is not None
            expected = 3 if dataset_cfg.split == 'train' else 2
            assert len(dataset) == expected, (config, dataset_cfg.split)


def test_max_objects_option(tmp_path, capsys):
    import json
    tool = _tool()
    out = str(tmp_path / 'seg')
    tool.main([
        'ade20k', out, '--num-train', '2', '--num-val', '1', '--size', '32',
        '--max-objects', '2'
    ])
    with open(osp.join(out, 'meta', 'settings.json')) as f:
        assert json.load(f)['max_objects'] == 2
    printed = capsys.readouterr().out
    assert "'max_objects': 2" in printed and "'image_size': 32" in printed
    with pytest.raises(SystemExit):
        tool.main(['cls', str(tmp_path / 'cls'), '--max-objects', '2'])
    assert '--max-objects does not apply to the cls layout' in \
        capsys.readouterr().err
