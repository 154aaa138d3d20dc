"""One rank of a two-process gloo group loading a URL with sdt3_mm's HTTP
loader; prints what it raised (see test_checkpoint_sources.py)."""
import os
import sys

import torch.distributed as dist

from sdt3_mm.reliability.safe_loading import load_from_http_safely

if __name__ == '__main__':
    dist.init_process_group('gloo')
    try:
        load_from_http_safely(sys.argv[1], model_dir=sys.argv[2])
    except Exception as error:
        print(f'rank {os.environ["RANK"]} raised {type(error).__name__}: '
              f'{error}')
    else:
        print(f'rank {os.environ["RANK"]} loaded')
    dist.destroy_process_group()
