"""The one check every site-level use case starts with."""

from __future__ import annotations

from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import NotFound
from chalicelib.domain.tenancy import Site, check_id
from chalicelib.ports import TenancyRepository


def site_in_scope(tenancy: TenancyRepository, actor: Actor, site_id: str) -> Site:
    """The actor's own site, inside their site scope. A site outside either answers like a missing one,
    so another operator's ids reveal nothing."""
    check_id(site_id, field="site_id")
    site = tenancy.get_site(actor.operator_id, site_id)
    if site is None or not actor.grant.covers_site(site_id):
        raise NotFound("no such site")
    return site
