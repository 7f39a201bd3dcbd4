"""De-duplication of one request's images: leader clustering under the three-signal duplicate rule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from contract.categories import DedupThresholds
from gateway.decisions.analysis import ImageAnalysis
from gateway.decisions.ranking import representative_key
from gateway.hashing import HashVectors, duplicate_matrix, rule_closeness


class DuplicatePairs:
    """The duplicate rule over the pairs of one product's images, computed once (one vectorised pass; per call the
    numpy set-up costs more than 28 pairs' work), so clustering several subsets of the product (one per type) reads
    it rather than recomputing it. `group`: an image's group (its type); only pairs within a group are compared, and
    `clusters` is then called on whole groups."""

    def __init__(
        self, items: list[ImageAnalysis], t: DedupThresholds, group: Callable[[ImageAnalysis], object] | None = None
    ):
        self.t = t
        hashed = [a for a in items if a.hashes is not None]
        # The one duplicate rule (gateway.hashing); the chi-square runs only on pairs both hashes accept (fast at 200).
        self.vectors = HashVectors.from_hashes([a.hashes for a in hashed])
        labels: dict[object, int] = {}
        groups = None if group is None else np.array([labels.setdefault(group(a), len(labels)) for a in hashed])
        self.matrix = duplicate_matrix(self.vectors, t, groups)
        self.row_of = {id(a): row for row, a in enumerate(hashed)}

    def clusters(self, items: list[ImageAnalysis]) -> list[list[ImageAnalysis]]:
        """Leader clustering of `items` (some of the images this was built over), best image first; cluster[0] is
        the representative.

        Images are visited in representative_key order; each joins the cluster of the leader it duplicates most
        closely (gateway.hashing.rule_closeness; ties: the better leader), otherwise it leads a new cluster: a resized
        copy of one image that also passes for a near twin of it (the same render on another backdrop) stays with its
        own original. Members are compared with leaders only, never with each other: chaining A~B~C would let
        near-duplicate steps (a slowly turning product, crops drifting along) merge two images that do not look
        alike, silently dropping a distinct view, and losing a view costs more than keeping a duplicate.
        """
        clusters: list[list[ImageAnalysis]] = []
        leader_rows: list[int] = []
        leader_cluster: list[int] = []
        for a in sorted(items, key=representative_key):
            row = self.row_of.get(id(a))
            if row is None:
                clusters.append([a])
                continue
            if leader_rows:
                matches = np.flatnonzero(self.matrix[row, leader_rows])
                if matches.size:
                    if matches.size > 1:  # argmin: the first (better) leader among equally close ones
                        candidates = np.asarray(leader_rows)[matches]
                        closeness = rule_closeness(self.vectors, np.full(len(candidates), row), candidates, self.t)
                        matches = matches[[int(np.argmin(closeness))]]
                    clusters[leader_cluster[int(matches[0])]].append(a)
                    continue
            leader_rows.append(row)
            leader_cluster.append(len(clusters))
            clusters.append([a])
        return clusters


def cluster_duplicates(items: list[ImageAnalysis], t: DedupThresholds) -> list[list[ImageAnalysis]]:
    """DuplicatePairs.clusters of all `items`."""
    return DuplicatePairs(items, t).clusters(items)


def dedup_groups(analyses: list[ImageAnalysis], t: DedupThresholds) -> list[list[str]]:
    """Duplicate groups for POST /v1/dedup: every id exactly once, no type or quality filtering.

    Groups are ordered by their earliest input; inside a group the representative comes first, then the others in
    input order. Error images are singletons.
    """
    clusters = cluster_duplicates([a for a in analyses if a.ok], t)
    clusters += [[a] for a in analyses if not a.ok]
    clusters.sort(key=lambda cluster: min(a.index for a in cluster))
    return [[cluster[0].id] + [a.id for a in sorted(cluster[1:], key=lambda a: a.index)] for cluster in clusters]
