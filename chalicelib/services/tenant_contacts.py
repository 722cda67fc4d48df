"""Who among a meter's tenants hears of its alarms by SMS: the phone the operator recorded on the customer
account, and every signed-up tenant of that account whose log-in is a phone (low-credit alerts only if they kept
them on; arrears always)."""

from __future__ import annotations

from chalicelib.domain.notifications import Contact, Language
from chalicelib.ports import MoneyRepository, TenantRepository


class TenantContacts:
    def __init__(self, money: MoneyRepository, tenants: TenantRepository) -> None:
        self._money = money
        self._tenants = tenants

    def contacts(self, operator_id: str, meter_ids: list[str]) -> dict[str, tuple[Contact, ...]]:
        accounts = {m.meter_id: m.account_id for m in self._money.moneys(operator_id, meter_ids) if m.account_id}
        if not accounts:
            return {}
        signed_up = [t for t in self._tenants.list(operator_id) if t.login.startswith("+")]
        found: dict[str, tuple[Contact, ...]] = {}
        for meter_id, account_id in accounts.items():
            stored = self._money.account(operator_id, account_id)
            phones: dict[str, Contact] = {}
            if stored is not None and stored.account.customer.phone.startswith("+"):
                phones[stored.account.customer.phone] = Contact(stored.account.customer.phone, Language.ZH_HANS)
            for tenant in signed_up:
                if tenant.sees(account_id):
                    phones[tenant.login] = Contact(tenant.login, Language(tenant.language), not tenant.sms_alerts)
            found[meter_id] = tuple(phones.values())
        return found
