"""Sends an identify and a track call through Segment's official Python SDK
(segment-analytics-python) to a flowc daemon: `python sdk_send.py HOST WRITE_KEY`.
Timestamps are three hours in the past, so the flow's timers are already due.
Exits 1 (printing the errors) when the SDK reports any."""

import datetime
import sys

from segment.analytics import Client

host, write_key = sys.argv[1], sys.argv[2]
errors = []
client = Client(
    write_key,
    host=host,
    gzip=True,
    max_retries=1,
    on_error=lambda error, batch: errors.append(repr(error)),
)
start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=3)
client.identify(
    "sdk-1",
    {
        "email": "sam@x.test",
        "first_name": "Sam",
        "phone": "+34600000000",
        "consent": {"email": True, "sms": True},
    },
    timestamp=start,
)
client.track(
    "sdk-1",
    "Cart Abandoned",
    {"cart_url": "https://shop.test/cart/sdk"},
    timestamp=start + datetime.timedelta(seconds=1),
)
client.flush()
client.join()
if errors:
    print("\n".join(errors))
    sys.exit(1)
