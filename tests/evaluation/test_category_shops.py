"""evaluation.category_shops: which category a never-trained shop's product should be curated as."""

from evaluation.category_shops import true_category

ROUTES = {"apparel": "apparel", "gear": "default"}
CATEGORIES = {"apparel", "footwear", "default"}


def test_the_true_category_is_the_class_route_else_the_category_of_that_name_else_default():
    assert true_category("bags", ROUTES, CATEGORIES) == "default"  # gear, routed to default
    assert true_category("footwear", ROUTES, CATEGORIES) == "footwear"  # no head class, but a category
    assert true_category("footwear", {**ROUTES, "footwear": "footwear"}, CATEGORIES) == "footwear"
    assert true_category("kitchen", ROUTES, CATEGORIES) == "default"
