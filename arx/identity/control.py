"""Authentication and authorisation for the control plane.

One place turns a credential into a ``Principal`` and a principal plus an
org into an ``Access``, in this order, each step refusing on its own:

1. the credential (401 when missing or invalid): an admin token (hashed,
   expiry and revocation checked in PostgreSQL on every request: the
   control plane is not the hot path, so a revoked token stops at once), a
   bearer JWT from the configured OpenID provider, or the bootstrap token;
2. the org (404): a token of another org, a person without an active
   membership there, and an org that does not exist all get the same
   answer, so nobody learns which orgs exist;
3. the org's admin allowlist (403), only once membership is established;
4. the route's roles (403), in ``arx.api.guards``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from arx.db.pool import Conn, connection
from arx.errors import AddressNotAllowedError, AdminAuthenticationError, NotFoundError
from arx.identity import keys, repo
from arx.identity.network import Address, Network, admitted
from arx.identity.principal import Access, Principal, PrincipalKind

_DUMMY_HASH = keys.hash_secret("arx-dummy-admin-secret")


class BearerIdentity(Protocol):
    @property
    def issuer(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def email_verified(self) -> bool: ...


class BearerVerifier(Protocol):
    async def verify_bearer(self, token: str) -> BearerIdentity: ...


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith(keys.PREFIX)


def no_such_org() -> NotFoundError:
    # One message for "not yours" and "does not exist" (see the module docstring).
    return NotFoundError("no such org, or no access to it")


class ControlPlane:
    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        *,
        bootstrap_token: str,
        oidc: BearerVerifier | None,
    ) -> None:
        self.pool = pool
        self._bootstrap = bootstrap_token.encode()
        self._oidc = oidc

    async def principal(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AdminAuthenticationError(
                "an Authorization: Bearer header with an admin token or an access token "
                "from the org's identity provider is required"
            )
        if token.startswith(keys.ADMIN_PREFIX):
            return await self._admin_token(token)
        if _looks_like_jwt(token):
            if self._oidc is None:
                raise AdminAuthenticationError("no identity provider is configured for bearer JWTs")
            identity = await self._oidc.verify_bearer(token)
            return await self.user_for_identity(
                identity.issuer, identity.subject, identity.email, identity.email_verified
            )
        if self._bootstrap and hmac.compare_digest(token.encode(), self._bootstrap):
            return Principal(kind=PrincipalKind.BOOTSTRAP, id="bootstrap", name="bootstrap")
        raise AdminAuthenticationError("the admin credential is not valid")

    async def _admin_token(self, token: str) -> Principal:
        try:
            token_id, secret = keys.parse(token, keys.ADMIN_PREFIX)
        except Exception:
            raise AdminAuthenticationError("the admin token is malformed") from None
        async with connection(self.pool) as conn:
            cur = await conn.execute(repo.RESOLVE_ADMIN_TOKEN, (token_id,))
            row = await cur.fetchone()
        if row is not None and row[0] is None:
            row = None  # a function with OUT parameters answers a row of NULLs
        stored = bytes(row[3]) if row else _DUMMY_HASH
        if not keys.verify(secret, stored) or row is None:
            raise AdminAuthenticationError(
                "the admin token is not valid (unknown, expired or revoked)"
            )
        return Principal(
            kind=PrincipalKind.TOKEN,
            id=token_id,
            name=row[1],
            token_org=row[0],
            token_roles=frozenset(row[2]),
            token_allowlist=tuple(row[4]) if row[4] is not None else None,
            token_expires_at=row[5],
            person=row[6],
        )

    async def user_for_identity(
        self, issuer: str, subject: str, email: str | None, email_verified: bool
    ) -> Principal:
        """The person an IdP vouches for; they must have been added to some org first."""
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                repo.USER_FOR_IDENTITY, (issuer, subject, email, email_verified)
            )
            row = await cur.fetchone()
        if row is None:
            raise AdminAuthenticationError(
                "this identity is not an ARX user: an admin must add the person (or SCIM "
                "provision them) before they can sign in"
            )
        return self.user(row[0], row[1])

    @staticmethod
    def user(user_id: UUID, email: str) -> Principal:
        return Principal(kind=PrincipalKind.USER, id=str(user_id), name=email, person=user_id)

    async def owner_exists(self) -> bool:
        async with connection(self.pool) as conn:
            cur = await conn.execute(repo.OWNER_EXISTS)
            row = await cur.fetchone()
        return bool(row and row[0])

    async def access(self, principal: Principal, org_id: UUID, address: Address | None) -> Access:
        if principal.kind is PrincipalKind.TOKEN:
            if principal.token_org != org_id:
                raise no_such_org()
            roles, allowlist = principal.token_roles, principal.token_allowlist
        elif principal.kind is PrincipalKind.USER:
            async with connection(self.pool) as conn:
                cur = await conn.execute(repo.USER_ACCESS, (UUID(principal.id), org_id))
                row = await cur.fetchone()
            if row is None or not row[1]:
                raise no_such_org()
            roles = frozenset(row[1])
            allowlist = tuple(row[2]) if row[2] is not None else None
        else:
            raise no_such_org()
        _check_address(address, allowlist)
        return Access(principal=principal, org_id=org_id, roles=roles)


def _check_address(address: Address | None, allowlist: Sequence[Network] | None) -> None:
    if not admitted(address, allowlist):
        raise AddressNotAllowedError(
            f"{address or 'an unknown address'} is not in this org's admin allowlist"
        )
