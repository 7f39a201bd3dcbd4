"""gateway.decisions.compliance: which served compliance checks fired, with the category's thresholds and reasons,
and the verdict that names them."""

import dataclasses

from contract.categories import ComplianceThresholds
from gateway.decisions.compliance import ComplianceHit, compliance_hits
from gateway.decisions.selection import select
from tests.gateway.decisions.factories import APPAREL, image

SWIMWEAR_LIKE = dataclasses.replace(
    APPAREL,
    compliance=ComplianceThresholds(
        default_max=0.5, by_check={"nsfw": 0.9}, reasons={"badge": "text_overlay", "nsfw": "non_compliant"}
    ),
)


def test_hits_are_the_checks_at_their_threshold_highest_score_first():
    scores = {"nsfw": 0.85, "weapons": 0.7, "badge": 0.55, "violence": 0.2}
    assert compliance_hits(scores, SWIMWEAR_LIKE) == [
        ComplianceHit("weapons", "non_compliant", 0.7, 0.5),
        ComplianceHit("badge", "text_overlay", 0.55, 0.5),
    ]  # nsfw 0.85 stays under this category's 0.9
    assert compliance_hits({}, SWIMWEAR_LIKE) == []


def test_a_rejected_verdict_names_the_checks_and_keeps_every_score():
    flagged = image("flagged", 0, compliance={"weapons": 0.93, "nsfw": 0.1})
    clean = image("clean", 1, compliance={"weapons": 0.02, "nsfw": 0.1})
    selected, verdicts = select([flagged, clean], APPAREL)
    assert selected == ["clean"]
    assert verdicts[0].status == "rejected" and verdicts[0].reasons == ["non_compliant"]
    assert verdicts[0].compliance == [ComplianceHit("weapons", "non_compliant", 0.93, 0.5)]
    assert verdicts[0].scores == {"blur": 0.1, "weapons": 0.93, "nsfw": 0.1}
    assert verdicts[1].compliance == [] and verdicts[1].scores["weapons"] == 0.02
