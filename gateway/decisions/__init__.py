"""Pure decisions over plain data (no I/O): rejection, placeholders, de-duplication, ordering, category, types,
search partitions. Callers import from the concern module; these re-exports are for convenience (scripts, notebooks).
"""

from gateway.decisions.analysis import UNKNOWN_TYPE, ImageAnalysis, LibraryMatch, Verdict
from gateway.decisions.category import (
    CategoryChoice,
    CategoryPrediction,
    choose_category,
    head_width_matches,
    predict_category,
)
from gateway.decisions.duplicates import cluster_duplicates, dedup_groups
from gateway.decisions.image_types import TypeCall, type_from_head
from gateway.decisions.placeholders import (
    PlaceholderEvidence,
    VoteOutcome,
    VoteRule,
    category_vote,
    counts_toward_category,
    exemplar_feed,
    exemplar_vote,
    placeholder_evidence,
)
from gateway.decisions.quality import rejection_reasons
from gateway.decisions.ranking import NEUTRAL_BLUR_SCORE, representative_key
from gateway.decisions.search import (
    IndexPlacement,
    SearchPlan,
    index_placements,
    partition_allowed,
    partition_name,
    search_partitions,
)
from gateway.decisions.selection import order_selection, select

__all__ = [
    "NEUTRAL_BLUR_SCORE",
    "UNKNOWN_TYPE",
    "CategoryChoice",
    "CategoryPrediction",
    "ImageAnalysis",
    "IndexPlacement",
    "LibraryMatch",
    "PlaceholderEvidence",
    "SearchPlan",
    "TypeCall",
    "Verdict",
    "VoteOutcome",
    "VoteRule",
    "category_vote",
    "choose_category",
    "cluster_duplicates",
    "counts_toward_category",
    "dedup_groups",
    "exemplar_feed",
    "exemplar_vote",
    "head_width_matches",
    "index_placements",
    "order_selection",
    "partition_allowed",
    "partition_name",
    "placeholder_evidence",
    "predict_category",
    "rejection_reasons",
    "representative_key",
    "search_partitions",
    "select",
    "type_from_head",
]
