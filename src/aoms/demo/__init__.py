"""The demo store that ships with aoms, and a generator of Shopify order payloads for it."""
