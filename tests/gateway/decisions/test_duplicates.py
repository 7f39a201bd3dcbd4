"""gateway.decisions.duplicates: leader clustering (no chaining) and the /v1/dedup groups."""

import time

import numpy as np
from PIL import Image, ImageDraw

from gateway.decisions.duplicates import DuplicatePairs, cluster_duplicates, dedup_groups
from gateway.decisions.selection import select
from gateway.hashing import ImageHashes, compute_hashes
from tests.gateway.decisions.factories import CATALOG, DEDUP, failed, ids, image, picture


def product_photo(size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), (240, 240, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle([size * 0.2, size * 0.15, size * 0.8, size * 0.9], fill=(30, 90, 180))
    draw.ellipse([size * 0.4, size * 0.3, size * 0.6, size * 0.5], fill=(250, 220, 40))
    return img


def thumb_hashes(img: Image.Image) -> ImageHashes:
    return compute_hashes(np.asarray(img.resize((128, 128), Image.Resampling.BILINEAR)))


def test_cluster_representative_is_the_highest_resolution_copy():
    sizes = [300, 1200, 600]
    copies = [image(f"copy{s}", i, size=(s, s), hashes=thumb_hashes(product_photo(s))) for i, s in enumerate(sizes)]
    other = image("other", 3, size=(2000, 2000), hashes=thumb_hashes(product_photo(400).rotate(90)))
    clusters = cluster_duplicates([*copies, other], DEDUP)
    assert [ids(c) for c in clusters] == [["other"], ["copy1200", "copy600", "copy300"]]


def with_phash(hashes: ImageHashes, phash: int) -> ImageHashes:
    return ImageHashes(phash=phash, dhash_edge=hashes.dhash_edge, hsv_hist=hashes.hsv_hist)


def test_no_transitive_chaining():
    base = picture(0)
    step = DEDUP.phash_max_distance // 2 + 1  # one step is within the (tuned) threshold, two steps are beyond it
    assert step <= DEDUP.phash_max_distance < 2 * step
    one_step, two_steps = (1 << step) - 1, (1 << (2 * step)) - 1
    a = image("a", 0, size=(3000, 3000), hashes=with_phash(base, 0))
    b = image("b", 1, size=(2000, 2000), hashes=with_phash(base, one_step))  # one step from a
    c = image("c", 2, size=(1000, 1000), hashes=with_phash(base, two_steps))  # one step from b, two from a
    assert [ids(cluster) for cluster in cluster_duplicates([c, b, a], DEDUP)] == [["a", "b"], ["c"]]


def test_a_copy_of_two_leaders_joins_the_nearer_one():
    """A copy that passes the rule against two leaders (which do not pass it against each other) joins the leader
    its hashes are closest to, not the first: a resized copy of a shop's main picture stays with it when a near twin
    (the same render on another backdrop) leads an earlier cluster."""
    base = picture(0)
    step = DEDUP.phash_max_distance // 2 + 1
    twin = image("twin", 0, size=(3000, 3000), hashes=with_phash(base, (1 << (2 * step)) - 1))  # biggest: first leader
    main = image("main", 1, size=(2000, 2000), hashes=with_phash(base, 0))  # two steps from the twin: its own leader
    copy = image("copy", 2, size=(500, 500), hashes=with_phash(base, (1 << step) - 1 >> 1))  # nearer main than twin
    assert [ids(c) for c in cluster_duplicates([copy, main, twin], DEDUP)] == [["twin"], ["main", "copy"]]


def test_equally_close_leaders_keep_the_better_one():
    base = picture(0)
    step = DEDUP.phash_max_distance // 2 + 1
    first = image("first", 0, size=(3000, 3000), hashes=with_phash(base, (1 << step) - 1))
    second = image("second", 1, size=(2000, 2000), hashes=with_phash(base, ((1 << step) - 1) << step))
    copy = image("copy", 2, size=(500, 500), hashes=with_phash(base, 0))  # `step` bits from each
    assert [ids(c) for c in cluster_duplicates([copy, second, first], DEDUP)] == [["first", "copy"], ["second"]]


def test_pairs_computed_over_a_whole_product_cluster_a_subset_as_the_subset_alone():
    # select computes the rule once per product and clusters each type's images from it: the same clusters as the
    # type's images clustered on their own, whatever else the product holds.
    base = picture(0)
    step = DEDUP.phash_max_distance // 2 + 1
    images = [
        image(f"i{k}", k, size=(3000 - 100 * k, 3000 - 100 * k), hashes=with_phash(base, (1 << (step * (k % 3))) - 1))
        for k in range(9)
    ]
    pairs = DuplicatePairs(images, DEDUP)
    for subset in (images[::2], images[1::2], images[3:7], images):
        assert [ids(c) for c in pairs.clusters(subset)] == [ids(c) for c in cluster_duplicates(subset, DEDUP)]
    assert [ids(c) for c in pairs.clusters(images)] != [[a.id] for a in images]  # the product does hold duplicates

    # Grouped (select groups by type): pairs across groups are never compared; each group clusters as it would alone.
    grouped = DuplicatePairs(images, DEDUP, group=lambda a: a.index % 2)
    for subset in (images[::2], images[1::2]):
        assert [ids(c) for c in grouped.clusters(subset)] == [ids(c) for c in cluster_duplicates(subset, DEDUP)]
    rows = np.array([grouped.row_of[id(a)] for a in images])
    assert not grouped.matrix[np.ix_(rows[::2], rows[1::2])].any()


def test_images_without_hashes_are_never_duplicates():
    same = picture(7)
    items = [image("x", 0, hashes=same), image("y", 1, hashes=same), image("z", 2)]
    items[2].hashes = None
    unhashed = image("w", 3, size=(5000, 5000))
    unhashed.hashes = None
    clusters = cluster_duplicates([*items, unhashed], DEDUP)
    assert [ids(c) for c in clusters] == [["w"], ["x", "y"], ["z"]]


def test_two_hundred_images_cluster_quickly():
    rng = np.random.default_rng(0)
    items = [
        image(f"p{k}-{copy}", index, size=(800 + copy, 800), hashes=picture(k))
        for index, (k, copy) in enumerate((k, copy) for k in range(40) for copy in range(5))
    ]
    shuffled = [items[i] for i in rng.permutation(len(items))]
    started = time.perf_counter()
    clusters = cluster_duplicates(shuffled, DEDUP)
    selected, verdicts = select(shuffled, CATALOG.default, max_images=50)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert len(clusters) == 40 and all(len(c) == 5 for c in clusters)
    assert all(c[0].width == 804 for c in clusters)
    assert len(selected) == 40 and sum(v.status == "duplicate" for v in verdicts) == 160


def test_dedup_groups_cover_every_id_once_ignoring_type_and_quality():
    same = picture(5)
    analyses = [
        image("solo", 0),
        image("dup_small", 1, type="front", size=(500, 500), hashes=same),
        failed("broken", 2),
        image("dup_big_blurry", 3, type="back", size=(2000, 2000), scores={"blur": 0.99}, hashes=same),
        image("dup_mid", 4, size=(800, 800), hashes=same),
    ]
    groups = dedup_groups(analyses, DEDUP)
    assert groups == [["solo"], ["dup_big_blurry", "dup_small", "dup_mid"], ["broken"]]
    flat = [i for group in groups for i in group]
    assert sorted(flat) == sorted(a.id for a in analyses)
    assert dedup_groups([], DEDUP) == []
