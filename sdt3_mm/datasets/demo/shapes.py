"""Synthetic scenes of textured shapes: the project's embedded demo data.

A scene is a textured background with one or more filled polygons, each
of a random colour and in the texture of its class. From such scenes we
write the layouts OpenMMLab's datasets read: an ImageNet-style class-folder
tree (one shape per image), a COCO instance set (several shapes per image,
with boxes and polygons) and an ADE20K-style set of label maps (the same
scenes, one class per pixel).

Everything is drawn from ``numpy.random.default_rng((seed, split, index))``,
so a dataset is the same on every machine and in every process.
"""
import json
import math
import os
import os.path as osp
import shutil
import tempfile

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ('circle', 'square', 'triangle', 'hexagon', 'star', 'cross')
TEXTURES = ('solid', 'stripes', 'checker', 'dots', 'noise', 'grid')
_SPLIT_IDS = {'train': 0, 'val': 1}
# The colour of each class in the segmentation set.
SEGMENTATION_COLORS = ((220, 20, 60), (0, 128, 255), (0, 170, 30),
                       (255, 170, 0), (160, 0, 220), (0, 200, 200))


def shape_polygon(name, cx, cy, radius, angle):
    """Vertices (K x 2, x then y) of a shape centred at ``(cx, cy)``.

    Args:
        name (str): One of :data:`SHAPE_CLASSES`.
        cx (float): Centre x.
        cy (float): Centre y.
        radius (float): Circumradius.
        angle (float): Rotation in radians.

    Returns:
        np.ndarray: The polygon, float32.
    """
    if name == 'circle':
        radii, count = [1.0], 32
    elif name == 'square':
        radii, count = [1.0], 4
    elif name == 'triangle':
        radii, count = [1.0], 3
    elif name == 'hexagon':
        radii, count = [1.0], 6
    elif name == 'star':
        radii, count = [1.0, 0.45], 10
    elif name == 'cross':
        # Twelve vertices alternating between the arm tips and the corners
        # where the arms meet.
        arm = 0.35
        points = [(arm, 1), (-arm, 1), (-arm, arm), (-1, arm), (-1, -arm),
                  (-arm, -arm), (-arm, -1), (arm, -1), (arm, -arm), (1, -arm),
                  (1, arm), (arm, arm)]
        unit = np.array(points, dtype=np.float32) / math.hypot(1, arm)
        return _place(unit, cx, cy, radius, angle)
    else:
        raise KeyError(f'unknown shape {name!r}; shapes are {SHAPE_CLASSES}')
    theta = np.arange(count) * 2 * math.pi / count
    scale = np.resize(np.array(radii, dtype=np.float32), count)
    unit = np.stack([np.cos(theta), np.sin(theta)], 1) * scale[:, None]
    return _place(unit.astype(np.float32), cx, cy, radius, angle)


def _place(unit, cx, cy, radius, angle):
    rot = np.array([[math.cos(angle), -math.sin(angle)],
                    [math.sin(angle), math.cos(angle)]],
                   dtype=np.float32)
    return unit @ rot.T * radius + np.array([cx, cy], dtype=np.float32)


def texture(rng, height, width, color, contrast, kind=None):
    """A ``height x width x 3`` uint8 patch of a random texture of ``color``.

    Args:
        rng (np.random.Generator): Random source.
        height (int): Height.
        width (int): Width.
        color (np.ndarray): Base RGB colour.
        contrast (float): Depth of the pattern, 0 (flat) to 1.
        kind (str, optional): One of :data:`TEXTURES`; random if None.

    Returns:
        np.ndarray: The patch.
    """
    if kind is None:
        kind = TEXTURES[rng.integers(len(TEXTURES))]
    color = np.asarray(color, dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 'solid':
        shade = np.ones((height, width), np.float32)
    elif kind == 'stripes':
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(4, 10)
        phase = (xx * math.cos(angle) + yy * math.sin(angle)) / period
        shade = np.floor(phase) % 2
    elif kind == 'checker':
        cell = rng.integers(3, 8)
        shade = (xx // cell + yy // cell) % 2
    elif kind == 'grid':
        period = rng.integers(5, 9)
        shade = ((xx % period) > 1) & ((yy % period) > 1)
        shade = shade.astype(np.float32)
    elif kind == 'dots':
        period = rng.integers(5, 9)
        dist = np.hypot(xx % period - period / 2, yy % period - period / 2)
        shade = (dist >= period / 4).astype(np.float32)
    else:
        shade = rng.uniform(0, 1, (height, width)).astype(np.float32)
    shade = 1 - contrast * (1 - shade)
    return np.clip(shade[..., None] * color, 0, 255).astype(np.uint8)


def _contrasting_colors(rng, count, taken=()):
    """``count`` RGB colours, each far from the previous ones and from
    ``taken``."""
    colors = []
    while len(colors) < count:
        color = rng.integers(0, 256, 3)
        if all(np.abs(color - c).sum() > 180 for c in colors + list(taken)):
            colors.append(color)
    return colors


def render_scene(rng, size, shapes, background=None, class_colors=None):
    """Draw one scene.

    Args:
        rng (np.random.Generator): Random source.
        size (int): Image side in pixels.
        shapes (Sequence[tuple]): ``(label, cx, cy, radius, angle)`` per
            object, painted in order (later ones on top).
        background (str, optional): Texture of the background, one of
            :data:`TEXTURES`; random if None.
        class_colors (Sequence[tuple], optional): An RGB colour per class
            for the shapes, the background's colour then being far from
            all of them; random colours if None.

    Returns:
        tuple[np.ndarray, list[dict]]: The RGB image and, per object, its
        ``label``, ``polygon`` (K x 2) and visible ``mask`` (bool).
    """
    if class_colors is None:
        colors = _contrasting_colors(rng, len(shapes) + 1)
    else:
        colors = _contrasting_colors(
            rng, 1, taken=class_colors) + [
                np.asarray(class_colors[label]) for label, *_ in shapes
            ]
    # Every class wears its own texture, over a background of a random one:
    # without class colours, a class is told by outline and pattern
    # together, never by colour.
    image = texture(rng, size, size, colors[0], contrast=0.35, kind=background)
    objects = []
    for (label, cx, cy, radius, angle), color in zip(shapes, colors[1:]):
        polygon = shape_polygon(SHAPE_CLASSES[label], cx, cy, radius, angle)
        canvas = Image.new('L', (size, size), 0)
        ImageDraw.Draw(canvas).polygon([tuple(p) for p in polygon.tolist()],
                                       fill=1)
        mask = np.asarray(canvas, dtype=bool)
        image[mask] = texture(
            rng, size, size, color, contrast=0.5, kind=TEXTURES[label])[mask]
        for obj in objects:
            obj['mask'] &= ~mask
        objects.append(dict(label=label, polygon=polygon, mask=mask))
    return image, objects


def classification_scene(seed, split, index, size):
    """One image of the classification set and its label.

    The class cycles with ``index``, so every class has the same count.

    Returns:
        tuple[np.ndarray, int]: The image and its label.
    """
    rng = np.random.default_rng((seed, _SPLIT_IDS[split], index))
    label = index % len(SHAPE_CLASSES)
    radius = rng.uniform(0.22, 0.4) * size
    cx, cy = rng.uniform(radius, size - radius, 2)
    image, _ = render_scene(rng, size,
                            [(label, cx, cy, radius, rng.uniform(
                                0, 2 * math.pi))])
    return image, label


def _write_once(root, settings, write):
    """Write a demo set into ``root`` unless it is already there.

    The tree is built by ``write(tmp)`` in a temporary folder and renamed
    into place, so a reader never sees half a dataset, and concurrent
    writers (several distributed ranks) cannot clash: the set is the same
    whoever writes it. ``root/meta/settings.json`` records ``settings``; a
    set written with other settings, or a non-empty folder holding no set,
    is refused.
    """
    meta_file = osp.join(root, 'meta', 'settings.json')
    if osp.isfile(meta_file):
        with open(meta_file) as f:
            existing = json.load(f)
        if existing != settings:
            raise ValueError(
                f'{root} holds a demo set written with {existing}, not '
                f'{settings}; delete it or choose another data_root')
        return root
    if osp.isdir(root) and os.listdir(root):
        raise ValueError(f'{root} is not empty and holds no demo set; '
                         f'choose another data_root')
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.shapes-', dir=parent)
    try:
        os.makedirs(osp.join(tmp, 'meta'))
        write(tmp)
        with open(osp.join(tmp, 'meta', 'settings.json'), 'w') as f:
            json.dump(settings, f)
        try:
            os.rename(tmp, root)
        except OSError:
            # Another process finished first; its set is identical.
            if not osp.isfile(meta_file):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def write_classification_set(root,
                             num_train=1200,
                             num_val=300,
                             size=64,
                             seed=0):
    """Write the classification set in ImageNet folder layout.

    ``root/{train,val}/<class>/<index>.png`` and ImageNet-style annotation
    lists ``root/meta/{train,val}.txt`` (``<class>/<file> <label>``).

    Args:
        root (str): Folder of the dataset.
        num_train (int): Training images (spread evenly over classes).
        num_val (int): Held-out images.
        size (int): Image side in pixels.
        seed (int): Seed of the whole set.

    Returns:
        str: ``root``.
    """
    settings = dict(
        layout='imagenet',
        classes=list(SHAPE_CLASSES),
        num_train=num_train,
        num_val=num_val,
        size=size,
        seed=seed)

    def write(tmp):
        for split, count in (('train', num_train), ('val', num_val)):
            lines = []
            for name in SHAPE_CLASSES:
                os.makedirs(osp.join(tmp, split, name))
            for index in range(count):
                image, label = classification_scene(seed, split, index, size)
                rel = f'{SHAPE_CLASSES[label]}/{index:06d}.png'
                Image.fromarray(image).save(osp.join(tmp, split, rel))
                lines.append(f'{rel} {label}\n')
            with open(osp.join(tmp, 'meta', f'{split}.txt'), 'w') as f:
                f.writelines(lines)

    return _write_once(root, settings, write)


def detection_scene(seed,
                    split,
                    index,
                    size,
                    max_objects=4,
                    background=None,
                    class_colors=None):
    """One multi-object scene: shapes that neither overlap nor leave the
    image, so each polygon is exactly its object's visible outline.

    ``background`` and ``class_colors`` are passed to :func:`render_scene`.

    Returns:
        tuple[np.ndarray, list[dict]]: The image and its objects, as
        :func:`render_scene` returns them.
    """
    rng = np.random.default_rng((seed, _SPLIT_IDS[split], index))
    count = int(rng.integers(1, max_objects + 1))
    placed = []
    for _ in range(100 * count):
        if len(placed) == count:
            break
        radius = rng.uniform(0.1, 0.22) * size
        cx, cy = rng.uniform(radius + 1, size - radius - 1, 2)
        if all(
                math.hypot(cx - x, cy - y) > radius + r + 2
                for _, x, y, r, _ in placed):
            placed.append(
                (int(rng.integers(len(SHAPE_CLASSES))), cx, cy, radius,
                 rng.uniform(0, 2 * math.pi)))
    return render_scene(rng, size, placed, background, class_colors)


def write_detection_set(root,
                        num_train=600,
                        num_val=100,
                        size=128,
                        seed=0,
                        max_objects=4):
    """Write the detection set in COCO layout.

    ``root/{train,val}/<index>.png`` and COCO instance annotations
    ``root/annotations/instances_{train,val}.json``: per object a box
    (``x, y, w, h`` around its polygon), its polygon as the segmentation,
    and its area in pixels. Categories are :data:`SHAPE_CLASSES` with ids
    1..6.

    Args:
        root (str): Folder of the dataset.
        num_train (int): Training images.
        num_val (int): Held-out images.
        size (int): Image side in pixels.
        seed (int): Seed of the whole set.
        max_objects (int): Most objects in one image (at least one).

    Returns:
        str: ``root``.
    """
    settings = dict(
        layout='coco',
        classes=list(SHAPE_CLASSES),
        num_train=num_train,
        num_val=num_val,
        size=size,
        seed=seed,
        max_objects=max_objects)

    def write(tmp):
        os.makedirs(osp.join(tmp, 'annotations'))
        categories = [
            dict(id=i + 1, name=name) for i, name in enumerate(SHAPE_CLASSES)
        ]
        for split, count in (('train', num_train), ('val', num_val)):
            os.makedirs(osp.join(tmp, split))
            images, annotations = [], []
            for index in range(count):
                image, objects = detection_scene(seed, split, index, size,
                                                 max_objects)
                file_name = f'{index:06d}.png'
                Image.fromarray(image).save(osp.join(tmp, split, file_name))
                images.append(
                    dict(
                        id=index, file_name=file_name, height=size,
                        width=size))
                for obj in objects:
                    polygon = obj['polygon']
                    x1, y1 = polygon.min(0).tolist()
                    x2, y2 = polygon.max(0).tolist()
                    annotations.append(
                        dict(
                            id=len(annotations) + 1,
                            image_id=index,
                            category_id=obj['label'] + 1,
                            bbox=[x1, y1, x2 - x1, y2 - y1],
                            segmentation=[polygon.flatten().tolist()],
                            area=int(obj['mask'].sum()),
                            iscrowd=0))
            with open(
                    osp.join(tmp, 'annotations', f'instances_{split}.json'),
                    'w') as f:
                json.dump(
                    dict(
                        images=images,
                        annotations=annotations,
                        categories=categories), f)

    return _write_once(root, settings, write)


def write_segmentation_set(root,
                           num_train=600,
                           num_val=100,
                           size=128,
                           seed=0,
                           max_objects=4):
    """Write the segmentation set in ADE20K layout.

    ``root/images/{training,validation}/<index>.png`` and label maps
    ``root/annotations/{training,validation}/<index>.png`` (one byte per
    pixel: 0 for the background, ``1 + class`` on each shape). The scenes
    are drawn as by :func:`detection_scene`, but on a plain background and
    with each class in its own colour (:data:`SEGMENTATION_COLORS`) as well
    as its own texture: on the detection scenes, where a striped shape and a
    striped background look alike away from the outline, a small spiking
    model learns per-pixel classes far more slowly (docs/en/user_guides/
    training_and_testing.md, "The segmentation demo").

    Args:
        root (str): Folder of the dataset.
        num_train (int): Training images.
        num_val (int): Held-out images.
        size (int): Image side in pixels.
        seed (int): Seed of the whole set.
        max_objects (int): Most objects in one image (at least one).

    Returns:
        str: ``root``.
    """
    settings = dict(
        layout='ade20k',
        classes=['background'] + list(SHAPE_CLASSES),
        num_train=num_train,
        num_val=num_val,
        size=size,
        seed=seed,
        max_objects=max_objects)

    def write(tmp):
        for split, folder, count in (('train', 'training', num_train),
                                     ('val', 'validation', num_val)):
            for kind in ('images', 'annotations'):
                os.makedirs(osp.join(tmp, kind, folder))
            for index in range(count):
                image, objects = detection_scene(seed, split, index, size,
                                                 max_objects, 'solid',
                                                 SEGMENTATION_COLORS)
                label = np.zeros((size, size), np.uint8)
                for obj in objects:
                    label[obj['mask']] = obj['label'] + 1
                name = f'{index:06d}.png'
                Image.fromarray(image).save(
                    osp.join(tmp, 'images', folder, name))
                Image.fromarray(label).save(
                    osp.join(tmp, 'annotations', folder, name))

    return _write_once(root, settings, write)
