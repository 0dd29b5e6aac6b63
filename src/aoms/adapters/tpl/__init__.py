"""Warehouses and 3PLs: the REST/JSON contract (docs/3pl-contract.json) and the file drop."""
