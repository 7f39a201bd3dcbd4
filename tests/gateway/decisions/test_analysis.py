"""gateway.decisions.analysis: an analysis is consistent with the contract's reason codes and score names."""

import pytest

from gateway.decisions.analysis import ImageAnalysis


def test_error_reason_is_validated():
    with pytest.raises(ValueError, match="error_reason"):
        ImageAnalysis(id="x", supplier=None, index=0, ok=False)
    with pytest.raises(ValueError, match="error_reason"):
        ImageAnalysis(id="x", supplier=None, index=0, ok=True, error_reason="undecodable")
    with pytest.raises(ValueError, match="sharpness"):
        ImageAnalysis(id="x", supplier=None, index=0, ok=True, scores={"sharpness": 1.0})
