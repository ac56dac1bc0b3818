"""Drives nudge's tracking API with an official Python library, unchanged
except for its host: Segment's (`segment`, gzip on) or RudderStack's
(`rudderstack`, gzip on by default). Prints the requests the library
reported as failed and exits non-zero if there were any.

usage: tracking_client.py segment|rudderstack HOST WRITE_KEY MAX_RETRIES
"""
import sys

library, host, write_key, retries = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
errors = []


def on_error(error, batch):
    errors.append(repr(error))


if library == "segment":
    from segment.analytics import Client

    client = Client(write_key, host=host, gzip=True, max_retries=retries, on_error=on_error)
elif library == "rudderstack":
    from rudderstack.analytics import Client

    client = Client(write_key, host=host, gzip=True, max_retries=retries, on_error=on_error)
else:
    sys.exit("unknown library " + library)

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
