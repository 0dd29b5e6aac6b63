"""aoms: automated order management for Shopify and Shopify Plus merchants."""

__version__ = "0.1.0"
