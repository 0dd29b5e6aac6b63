"""Adapters: the database, Shopify, geodata and the in-process event relay."""
