"""The aggregator's W_x has no bias: a bias would shift the query q away from mean(P) + offset at any image.

Its ``bias=False`` line carries a mutmut pragma for the equivalent ``bias=None`` mutant; this test holds the
real mutants of that line (``bias`` dropped or ``True``), which the pragma hides from the score.
"""

from aape_lightning.core.aggregator import AttentionAggregator

DIM = 8


def test_the_image_to_query_projection_has_no_bias():
    agg = AttentionAggregator(DIM, num_heads=2)
    assert agg.image_to_query.bias is None
    assert agg.image_to_query.weight.shape == (DIM, DIM)
    assert AttentionAggregator(DIM, num_heads=2, condition_on_image=False).image_to_query is None
