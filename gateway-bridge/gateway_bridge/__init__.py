"""Voltvend gateway bridge: the on-site half of the product.

Never imports ``chalicelib``; the cloud vendors the pieces it shares (device profiles, the register
codec and the wire protocol) from this package.
"""
