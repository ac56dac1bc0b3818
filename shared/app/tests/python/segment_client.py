"""Drives nudge's tracking API with Segment's official Python library,
unchanged except for `host`. Exits non-zero if the library reports an error."""
import sys

from segment.analytics import Client

host, write_key = sys.argv[1], sys.argv[2]
errors = []
client = Client(write_key, host=host, max_retries=0, on_error=lambda e, batch: errors.append(repr(e)))
client.identify("user-42", {
    "email": "grace@example.com",
    "first_name": "Grace",
    "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
}, anonymous_id="anon-42")
client.track("user-42", "Product Viewed", {"product_id": "p-1", "category": "shoes", "price": 49.5})
client.track("user-42", "Checkout Started", {"checkout_id": "chk-42", "value": 49.5, "currency": "USD",
                                              "products": [{"product_id": "p-1", "name": "Runner", "price": 49.5, "quantity": 1}]})
client.page("user-42", "Shop", "Home", {"url": "https://shop.example/"})
client.flush()
client.shutdown()
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print("sent")
