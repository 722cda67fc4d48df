"""Shop tenants' identity (issue 8.1): invitations by the operator, sign-up from an invitation, sign-in with phone
or e-mail and password, sessions, password reset, preferences. A tenant sees only the accounts they were invited
to; everything here is keyed by the operator whose link they followed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import timedelta

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import AuthenticationFailed, NotFound, ValidationError
from chalicelib.domain.notifications import Audience, Language, PlannedMessage
from chalicelib.domain.sessions import Session
from chalicelib.domain.staff import refuse_if_locked, validate_display_name, validate_new_password
from chalicelib.domain.tenancy import check_id, validate_code
from chalicelib.domain.tenants import (
    INVITATION_LIFETIME,
    RESET_LIFETIME,
    Invitation,
    TenantActor,
    TenantUser,
    normalise_login,
)
from chalicelib.ports import (
    AlarmRepository,
    Clock,
    MoneyRepository,
    OperationLog,
    PasswordHasher,
    SessionStore,
    TenancyRepository,
    TenantRepository,
)
from chalicelib.services.audit import operation
from chalicelib.services.scoping import site_in_scope

BAD_CREDENTIALS = "wrong phone/e-mail or password"
SESSION_PREFIX = "tenant:"  # tenant sessions share the session store; staff usernames never contain a colon


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TenantAuth:
    def __init__(self, tenants: TenantRepository, sessions: SessionStore, money: MoneyRepository,
                 oplog: OperationLog, hasher: PasswordHasher, outbox: AlarmRepository, clock: Clock, *,
                 session_ttl: timedelta, tenancy: TenancyRepository) -> None:
        self._tenants = tenants
        self._sessions = sessions
        self._money = money
        self._oplog = oplog
        self._hasher = hasher
        self._outbox = outbox
        self._clock = clock
        self._ttl = session_ttl
        self._tenancy = tenancy
        self._decoy_hash = hasher.hash(secrets.token_urlsafe(16))  # unknown log-ins take as long as wrong passwords

    # -- the operator's side -------------------------------------------------------------------
    def invite(self, actor: Actor, site_id: str, account_id: str) -> Invitation:
        """A single-use invitation to one open account of the site (shown as a link and a QR code)."""
        actor.require(Permission.ACCOUNTS_MANAGE)
        site_in_scope(self._tenancy, actor, site_id)
        check_id(account_id, field="account_id")
        stored = self._money.account(actor.operator_id, account_id)
        if stored is None or not stored.account.is_open:
            raise NotFound("no such open account")
        now = self._clock.now()
        invitation = Invitation(actor.operator_id, secrets.token_urlsafe(18), account_id, actor.username, now,
                                now + INVITATION_LIFETIME)
        self._tenants.put_invitation(invitation)
        self._oplog.append(operation(actor.operator_id, actor.username, "tenant.invite", f"account:{account_id}",
                                     now, source_ip=actor.source_ip, expires=invitation.expires_at.isoformat()))
        return invitation

    def send_invitation(self, actor: Actor, site_id: str, invitation_id: str, link: str) -> str:
        """Queue the invitation link by SMS to the phone on the customer account (sent within the minute, shown in
        the outbox); returns the phone."""
        actor.require(Permission.ACCOUNTS_MANAGE)
        site_in_scope(self._tenancy, actor, site_id)
        invitation = self.invitation(actor.operator_id, invitation_id)
        stored = self._money.account(actor.operator_id, invitation.account_id)
        phone = stored.account.customer.phone if stored else ""
        if not phone.startswith("+"):
            raise ValidationError("the account has no phone number in international form (+86…): give the link or "
                                  "the QR code instead", field="phone")
        now = self._clock.now()
        text = f"【Voltvend】您的商铺用电账户已开通，点击加入 / join your shop's electricity account: {link}"
        message = PlannedMessage(phone, Audience.TENANT, Language.ZH_HANS, text, now, f"invite:{invitation_id}",
                                 alarm_id="", urgent=True)
        self._outbox.enqueue(actor.operator_id, site_id, [message])
        self._oplog.append(operation(actor.operator_id, actor.username, "tenant.invite_sms",
                                     f"account:{invitation.account_id}", now, source_ip=actor.source_ip))
        return phone

    # -- the tenant's side ---------------------------------------------------------------------
    def invitation(self, operator_id: str, invitation_id: str) -> Invitation:
        found = self._tenants.invitation(validate_code(operator_id), invitation_id) if invitation_id else None
        if found is None or not found.usable(self._clock.now()):
            raise NotFound("this invitation is unknown, used or expired; ask for a new one")
        return found

    def accept(self, operator_id: str, invitation_id: str, *, login: str, display_name: str, password: str,
               source_ip: str = "") -> Session:
        """Sign up from an invitation, or (an existing tenant, with their password) add its account to theirs."""
        invitation = self.invitation(operator_id, invitation_id)
        name = normalise_login(login)
        now = self._clock.now()
        used = replace(invitation, used_by="")
        existing = self._tenants.by_login(invitation.operator_id, name)
        if existing is not None:
            if not self._hasher.verify(existing.password_hash, password):
                raise AuthenticationFailed("that log-in exists: give its password to add this account to it")
            user = existing.with_account(invitation.account_id)
            self._tenants.save(user, invitation=replace(used, used_by=user.tenant_id))
        else:
            tenant_id = f"tn-{secrets.token_hex(6)}"
            user = TenantUser(invitation.operator_id, tenant_id, name, validate_display_name(display_name),
                              self._hasher.hash(validate_new_password(password, username=name)),
                              (invitation.account_id,), created_at=now)
            self._tenants.save(user, invitation=replace(used, used_by=tenant_id), new_login=True)
        self._oplog.append(operation(user.operator_id, f"{SESSION_PREFIX}{user.tenant_id}", "tenant.join",
                                     f"account:{invitation.account_id}", now, source_ip=source_ip))
        return self._open_session(self._tenants.get(user.operator_id, user.tenant_id) or user)

    def login(self, operator_id: str, login: str, password: str) -> Session:
        if not login.strip() or not password:
            raise ValidationError("phone or e-mail and password are required")
        user = self._tenants.by_login(validate_code(operator_id), normalise_login(login))
        if user is None:
            self._hasher.verify(self._decoy_hash, password)
            raise AuthenticationFailed(BAD_CREDENTIALS)
        now = self._clock.now()
        refuse_if_locked(user, now)
        if not self._hasher.verify(user.password_hash, password):
            self._tenants.save(user.after_failed_login(now))
            raise AuthenticationFailed(BAD_CREDENTIALS)
        if user.failed_logins or self._hasher.needs_rehash(user.password_hash):
            hashed = self._hasher.hash(password) if self._hasher.needs_rehash(user.password_hash) else None
            user = replace(user, failed_logins=0, locked_until=None, password_hash=hashed or user.password_hash)
            self._tenants.save(user)
        return self._open_session(user)

    def _open_session(self, user: TenantUser) -> Session:
        now = self._clock.now()
        session = Session(user.operator_id, secrets.token_urlsafe(24), f"{SESSION_PREFIX}{user.tenant_id}",
                          secrets.token_urlsafe(24), now, now + self._ttl)
        self._sessions.put(session)
        return session

    def resolve(self, operator_id: str, session_id: str, *, source_ip: str = "") -> TenantActor | None:
        session = self._sessions.get(operator_id, session_id)
        if session is None or not session.is_live(self._clock.now()) or \
                not session.username.startswith(SESSION_PREFIX):
            return None
        user = self._tenants.get(operator_id, session.username.removeprefix(SESSION_PREFIX))
        if user is None:
            return None
        return TenantActor(operator_id, user.tenant_id, user.display_name, user.login, user.account_ids,
                           session.session_id, session.csrf_token, user.language, source_ip)

    def logout(self, tenant: TenantActor) -> None:
        self._sessions.delete(tenant.operator_id, tenant.session_id)

    def request_reset(self, operator_id: str, login: str, reset_url: str) -> bool:
        """Queue a one-hour reset link to the tenant's log-in (an SMS to a phone, an e-mail to an address) when it
        exists; the caller says the same either way (no account discovery). It goes through the outbox like alarm
        SMS (sent within the minute, shown to the operator)."""
        user = self._tenants.by_login(validate_code(operator_id), normalise_login(login))
        if user is None:
            return False
        secret, now = secrets.token_urlsafe(24), self._clock.now()
        self._tenants.put_reset(user.operator_id, _secret_hash(secret), user.tenant_id, now + RESET_LIFETIME)
        language = Language.ZH_HANS if user.language == "zh_Hans" else Language.EN
        text = ("【Voltvend】重置密码（1小时内有效）：" if language is Language.ZH_HANS
                else "[Voltvend] Reset your password (valid 1 h): ") + reset_url.replace("{token}", secret)
        message = PlannedMessage(user.login, Audience.TENANT, language, text, now,
                                 f"reset:{_secret_hash(secret)[:20]}", alarm_id="", urgent=True)
        return self._outbox.enqueue(user.operator_id, "", [message]) == 1

    def reset(self, operator_id: str, token: str, new_password: str) -> Session:
        tenant_id = self._tenants.take_reset(validate_code(operator_id), _secret_hash(token or ""), self._clock.now())
        user = self._tenants.get(operator_id, tenant_id) if tenant_id else None
        if user is None:
            raise NotFound("this reset link is unknown, used or expired; ask for a new one")
        user = replace(user, password_hash=self._hasher.hash(validate_new_password(new_password, username=user.login)),
                       failed_logins=0, locked_until=None)
        self._tenants.save(user)
        return self._open_session(user)

    def set_preferences(self, tenant: TenantActor, language: str, sms_alerts: bool) -> None:
        user = self._tenants.get(tenant.operator_id, tenant.tenant_id)
        if user is None:
            raise NotFound("no such tenant")
        self._tenants.save(user.preferences(language, sms_alerts))

    def tenant(self, tenant: TenantActor) -> TenantUser:
        user = self._tenants.get(tenant.operator_id, tenant.tenant_id)
        if user is None:
            raise NotFound("no such tenant")
        return user

