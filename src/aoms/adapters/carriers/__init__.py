"""Carrier adapters: the built-in table-rate carrier, EasyPost and Shippo."""
