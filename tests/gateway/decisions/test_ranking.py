"""gateway.decisions.ranking: which of two images is better (representative of a cluster, page order)."""

from gateway.decisions.ranking import NEUTRAL_BLUR_SCORE, representative_key
from tests.gateway.decisions.factories import ids, image


def test_representative_key_prefers_area_then_sharpness_then_supplier_then_input_order():
    ranked = sorted(
        [
            image("late", 6, scores={"blur": 0.2}),
            image("no_supplier", 5, scores={"blur": 0.2}),
            image("supplier2", 4, scores={"blur": 0.2}, supplier_priority=2),
            image("supplier1", 3, scores={"blur": 0.2}, supplier_priority=1),
            image("unmeasured", 2, scores={}),
            image("sharp", 1, scores={"blur": 0.01}),
            image("huge_blurry", 0, size=(3000, 3000), scores={"blur": 0.45}),
        ],
        key=representative_key,
    )
    assert NEUTRAL_BLUR_SCORE > 0.2
    assert ids(ranked) == ["huge_blurry", "sharp", "supplier1", "supplier2", "no_supplier", "late", "unmeasured"]
