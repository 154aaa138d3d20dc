"""Names of the official E-SpikeFormer and Meta-SpikeFormer (V2)
checkpoints, mapped onto ours.

The official code names stages ``downsample1_1``, ``ConvBlock1_1``, ...,
``block3``; we use ``downsample_layers.{i}`` and ``stages.{i}.{j}`` like
MMPretrain's ConvNeXt, and give every conv/BN pair the names ``conv`` and
``bn``. Every official key maps to exactly one of ours; a key that matches
no rule is an error, never dropped.
"""
import re

# (official stage prefix, function of the match -> our prefix)
_STAGE_RULES = [
    (r'downsample1_1', lambda m: 'downsample_layers.0'),
    (r'downsample1_2', lambda m: 'downsample_layers.1'),
    (r'downsample([234])', lambda m: f'downsample_layers.{m[1]}'),
    (r'ConvBlock1_1\.(\d+)', lambda m: f'stages.0.{m[1]}'),
    (r'ConvBlock1_2\.(\d+)', lambda m: f'stages.1.{m[1]}'),
    # Stage 2 is two one-block lists in the official code.
    (r'ConvBlock2_1\.(\d+)', lambda m: f'stages.2.{m[1]}'),
    (r'ConvBlock2_2\.(\d+)', lambda m: f'stages.2.{int(m[1]) + 1}'),
    (r'block([34])\.(\d+)', lambda m: f'stages.{m[1]}.{m[2]}'),
]

# Within a stage: (official suffix, our suffix); first match wins.
_LAYER_RULES = [
    (r'encode_conv\.(.+)', r'conv.\1'),
    (r'encode_bn\.(.+)', r'bn.\1'),
    # Meta-SpikeFormer's SepConv: pwconv1, bn1, dwconv, pwconv2, bn2.
    (r'Conv\.(pwconv1|dwconv|pwconv2)\.weight', r'sepconv.\1.conv.weight'),
    (r'Conv\.bn1\.(.+)', r'sepconv.pwconv1.bn.\1'),
    (r'Conv\.bn2\.(.+)', r'sepconv.pwconv2.bn.\1'),
    # SepConv ("Conv" in ConvBlocks, "conv" in transformer blocks).
    (r'[Cc]onv\.(pwconv1|dwconv|pwconv2)\.0\.(.+)', r'sepconv.\1.conv.\2'),
    (r'[Cc]onv\.(pwconv1|dwconv|pwconv2)\.1\.(.+)', r'sepconv.\1.bn.\2'),
    # ConvBlock, large family: conv{1,2}.0.module.{0: conv, 1: bn}.
    (r'conv([12])\.0\.module\.0\.(.+)', r'conv\1.conv.\2'),
    (r'conv([12])\.0\.module\.1\.(.+)', r'conv\1.bn.\2'),
    # ConvBlock, base family: conv{1,2} and bn{1,2}.
    (r'conv([12])\.(weight|bias)', r'conv\1.conv.\2'),
    (r'bn([12])\.(.+)', r'conv\1.bn.\2'),
    # Meta-SpikeFormer's RepConv projection: body.0 conv, body.1 the BN
    # (and pad), body.2 depthwise conv, conv, BN.
    (r'attn\.(q|k|v|proj)_conv\.0\.body\.0\.(.+)', r'attn.\1.conv.conv1.\2'),
    (r'attn\.(q|k|v|proj)_conv\.0\.body\.1\.bn\.(.+)', r'attn.\1.conv.bn1.\2'),
    (r'attn\.(q|k|v|proj)_conv\.0\.body\.2\.0\.(.+)',
     r'attn.\1.conv.dwconv.\2'),
    (r'attn\.(q|k|v|proj)_conv\.0\.body\.2\.1\.(.+)',
     r'attn.\1.conv.conv2.\2'),
    (r'attn\.(q|k|v|proj)_conv\.0\.body\.2\.2\.(.+)', r'attn.\1.conv.bn2.\2'),
    # Attention: X_conv.0 is the projection (a stacked pair in the large
    # family), X_conv.1 the BN after it.
    (r'attn\.(q|k|v|proj)_conv\.0\.conv([12])\.0\.(.+)',
     r'attn.\1.conv.conv\2.\3'),
    (r'attn\.(q|k|v|proj)_conv\.0\.conv([12])\.1\.(.+)',
     r'attn.\1.conv.bn\2.\3'),
    (r'attn\.(q|k|v|proj)_conv\.0\.(.+)', r'attn.\1.conv.\2'),
    (r'attn\.(q|k|v|proj)_conv\.1\.(.+)', r'attn.\1.bn.\2'),
    (r'rep_conv\.conv([12])\.0\.(.+)', r'rep_conv.conv.conv\1.\2'),
    (r'rep_conv\.conv([12])\.1\.(.+)', r'rep_conv.conv.bn\1.\2'),
    (r'mlp\.(fc[12])_conv\.(.+)', r'mlp.\1.conv.\2'),
    (r'mlp\.(fc[12])_bn\.(.+)', r'mlp.\1.bn.\2'),
    (r'(layer_scale[123])', r'\1'),
]

# Classifier heads: ``head`` and the large family's ``head_kd``.
_HEAD_RULES = [
    (r'head\.(weight|bias)', r'fc.\1'),
    (r'head_kd\.(weight|bias)', r'fc_kd.\1'),
]

_STAGE_PATTERNS = [(re.compile(p + r'\.(.+)'), f) for p, f in _STAGE_RULES]
_LAYER_PATTERNS = [(re.compile(p), r) for p, r in _LAYER_RULES]
_HEAD_PATTERNS = [(re.compile(p), r) for p, r in _HEAD_RULES]


def is_official_state_dict(state_dict):
    """Whether ``state_dict`` uses the official E-SpikeFormer (or
    Meta-SpikeFormer) names."""
    return any(
        key.startswith('downsample1_1.encode_conv.') for key in state_dict)


def _convert_key(key):
    for pattern, repl in _HEAD_PATTERNS:
        if pattern.fullmatch(key):
            return 'head', pattern.sub(repl, key)
    for stage_pattern, stage_prefix in _STAGE_PATTERNS:
        stage_match = stage_pattern.fullmatch(key)
        if stage_match is None:
            continue
        suffix = stage_match[stage_match.re.groups]
        for pattern, repl in _LAYER_PATTERNS:
            if pattern.fullmatch(suffix):
                return 'backbone', (f'{stage_prefix(stage_match)}.'
                                    f'{pattern.sub(repl, suffix)}')
    return None, None


def convert_official_state_dict(state_dict):
    """Convert an official E-SpikeFormer state dict to our names.

    Args:
        state_dict (dict): Official parameter names (``downsample1_1...``,
            ``head.weight``), optionally under a DDP ``module.`` prefix.

    Returns:
        tuple[dict, dict]: The backbone's state dict (names of
        :class:`ESpikeFormer`) and the classifier head's (``fc.*`` and,
        for the large family, ``fc_kd.*``).

    Raises:
        KeyError: If a key is not an official E-SpikeFormer name.
    """
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    backbone, head, unknown = {}, {}, []
    for key, value in state_dict.items():
        part, new_key = _convert_key(key)
        if part is None:
            unknown.append(key)
        elif part == 'head':
            head[new_key] = value
        else:
            backbone[new_key] = value
    if unknown:
        raise KeyError(
            f'{len(unknown)} keys of the checkpoint are not official '
            f'E-SpikeFormer names and were not converted: '
            f'{summarize_keys(unknown)}')
    return backbone, head


def summarize_keys(keys, limit=10):
    """The first ``limit`` of ``keys``, sorted, and how many more."""
    keys = sorted(keys)
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more
