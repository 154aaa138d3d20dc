"""The tools import their shared argument helpers from their own folders
(tools/runner_args.py, tools/analysis_tools/model_inputs.py), not from the
package, and start from any working directory."""
import os.path as osp

import pytest
from tool_runner import ROOT, run_tool

TOOLS = [
    'tools/train.py', 'tools/test.py',
    'tools/analysis_tools/verify_spike_driven.py',
    'tools/analysis_tools/spike_energy.py',
    'tools/analysis_tools/benchmark_counting.py',
    'tools/analysis_tools/spike_mae_reconstruct.py'
]


@pytest.mark.parametrize('tool', TOOLS, ids=osp.basename)
def test_tool_starts_from_another_directory(tool, tmp_path):
    out = run_tool([osp.join(ROOT, tool), '--help'], str(tmp_path))
    assert '--cfg-options' in out


def test_package_has_no_argument_parsing():
    import sdt3_mm.utils
    for name in ('add_common_arguments', 'load_config'):
        assert not hasattr(sdt3_mm.utils, name)
    assert not osp.exists(osp.join(ROOT, 'sdt3_mm/utils/runner_config.py'))
