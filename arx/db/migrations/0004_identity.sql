-- People and machines: users with roles per org, admin tokens, web sessions,
-- SCIM groups, the agent-key lifecycle, kill switches and IP allowlists.
--
-- Roles:
--   arx_control LOGIN  the control plane (admin API, sign-in, SCIM). Like
--                      arx_app it owns nothing and cannot bypass row-level
--                      security; unlike it, it may create and change orgs,
--                      agents, keys, credentials and people.
--   arx_app            the agent path. After this migration it can no longer
--                      create orgs, agents, keys or credentials: a bug or an
--                      injection on the execute path cannot mint an identity.
--   arx_identity NOLOGIN owns the SECURITY DEFINER functions that find a
--                      person (or an admin token) before any org is known; it
--                      reads exactly the identity tables, and writes only new
--                      users, their IdP links, emails and passwords.
--
-- Every change that can alter who may do what (a key revoked, an agent or
-- org switched off, an allowlist changed) fires NOTIFY arx_auth from a
-- trigger, so every API process drops what it remembered at commit, whoever
-- made the change (the API, the CLI or a DBA with psql).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arx_control') THEN
        CREATE ROLE arx_control LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arx_identity') THEN
        CREATE ROLE arx_identity NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA arx TO arx_identity;
GRANT USAGE ON SCHEMA arx TO arx_control;
ALTER ROLE arx_control SET statement_timeout = '30s';
ALTER ROLE arx_control SET idle_in_transaction_session_timeout = '60s';

SET ROLE arx_owner;

-- --- kill switches, allowlists, key lifecycle ----------------------------------

-- NULL allowlist: any address. An empty list would lock everyone out and is
-- refused by the API, so it cannot be stored by mistake.
ALTER TABLE arx.orgs
    ADD COLUMN agents_disabled_at      timestamptz,
    ADD COLUMN agents_disabled_reason  text CHECK (length(agents_disabled_reason) <= 500),
    ADD COLUMN agent_allowlist         cidr[] CHECK (cardinality(agent_allowlist) BETWEEN 1 AND 200),
    ADD COLUMN admin_allowlist         cidr[] CHECK (cardinality(admin_allowlist) BETWEEN 1 AND 200);

ALTER TABLE arx.agents
    ADD COLUMN disabled_at      timestamptz,
    ADD COLUMN disabled_reason  text CHECK (length(disabled_reason) <= 500);

ALTER TABLE arx.api_keys
    ADD COLUMN name          text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    ADD COLUMN created_by    text,
    ADD COLUMN expires_at    timestamptz,
    ADD COLUMN last_used_at  timestamptz,
    ADD COLUMN replaced_by   text,
    ADD COLUMN revoked_by    text;

-- Refused attempts that never reached policy (a disabled agent, an address
-- outside the allowlist) leave a trace too.
ALTER TABLE arx.audit_events DROP CONSTRAINT audit_events_kind_check;
ALTER TABLE arx.audit_events ADD CONSTRAINT audit_events_kind_check
    CHECK (kind IN ('decision', 'result', 'admin', 'refusal'));
ALTER TABLE arx.audit_events ADD CONSTRAINT audit_events_refusal_action
    CHECK (kind <> 'refusal' OR action IS NOT NULL);

-- --- people ----------------------------------------------------------------------

-- A person, across orgs. Nothing here grants anything: access comes from an
-- active membership. The password hash (argon2id) exists only for a founding
-- owner's local account (the demo's owner, or an org without an IdP). What
-- an org calls the person (display name, SCIM userName) lives on the
-- membership: one org's IdP cannot rename someone for another.
CREATE TABLE arx.users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL CHECK (email ~ '^[^@]{1,200}@[^@]{1,200}$'),
    password_hash  text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON arx.users (lower(email));

-- (issuer, subject) pairs from OIDC and SAML sign-ins, linked to a user.
CREATE TABLE arx.user_identities (
    issuer      text NOT NULL,
    subject     text NOT NULL,
    user_id     uuid NOT NULL REFERENCES arx.users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);

CREATE TABLE arx.memberships (
    org_id       uuid NOT NULL REFERENCES arx.orgs (id),
    user_id      uuid NOT NULL REFERENCES arx.users (id),
    roles        text[] NOT NULL DEFAULT '{}'
                 CHECK (roles <@ ARRAY['owner', 'admin', 'policy_author', 'reviewer', 'auditor']),
    active       boolean NOT NULL DEFAULT true,
    -- SCIM's externalId and userName as the org's IdP knows them.
    external_id  text CHECK (length(external_id) <= 200),
    user_name    text NOT NULL CHECK (length(user_name) BETWEEN 1 AND 200),
    display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE UNIQUE INDEX memberships_user_name ON arx.memberships (org_id, lower(user_name));

-- SCIM groups. A group whose display name is "arx-<role>" grants that role
-- to its members; other groups are kept (the IdP pushes them) and grant nothing.
CREATE TABLE arx.scim_groups (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES arx.orgs (id),
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    external_id   text CHECK (length(external_id) <= 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX scim_groups_name ON arx.scim_groups (org_id, lower(display_name));

CREATE TABLE arx.scim_group_members (
    org_id    uuid NOT NULL,
    group_id  uuid NOT NULL,
    user_id   uuid NOT NULL,
    PRIMARY KEY (org_id, group_id, user_id),
    FOREIGN KEY (org_id, group_id) REFERENCES arx.scim_groups (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES arx.memberships (org_id, user_id) ON DELETE CASCADE
);

-- A member's roles: assigned directly, or through an "arx-<role>" group.
-- An inactive membership has none.
CREATE FUNCTION arx.effective_roles(p_org uuid, p_user uuid) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(DISTINCT r ORDER BY r), '{}')
      FROM (
        SELECT unnest(m.roles) AS r
          FROM arx.memberships m
         WHERE m.org_id = p_org AND m.user_id = p_user AND m.active
        UNION
        SELECT lower(substr(g.display_name, 5))
          FROM arx.scim_group_members gm
          JOIN arx.scim_groups g ON g.org_id = gm.org_id AND g.id = gm.group_id
          JOIN arx.memberships m ON m.org_id = gm.org_id AND m.user_id = gm.user_id
         WHERE gm.org_id = p_org AND gm.user_id = p_user AND m.active
           AND lower(g.display_name) IN ('arx-owner', 'arx-admin', 'arx-policy_author',
                                         'arx-reviewer', 'arx-auditor')
      ) roles (r)
$$;

-- An org always keeps an active owner: whatever removes the last one (the
-- admin API, SCIM deactivating, deleting or ungrouping a person) fails at
-- commit with SQLSTATE AX409. Checked once per transaction, after every
-- change in it, so concurrent removals cannot each count on the other.
CREATE FUNCTION arx.keep_an_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    org uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.org_id ELSE NEW.org_id END;
BEGIN
    IF NOT EXISTS (SELECT FROM arx.memberships m
                    WHERE m.org_id = org AND m.active
                      AND 'owner' = ANY (arx.effective_roles(org, m.user_id))) THEN
        RAISE EXCEPTION 'an org keeps at least one active owner' USING ERRCODE = 'AX409';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER memberships_keep_an_owner
    AFTER UPDATE OR DELETE ON arx.memberships DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION arx.keep_an_owner();
CREATE CONSTRAINT TRIGGER scim_group_members_keep_an_owner
    AFTER DELETE ON arx.scim_group_members DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION arx.keep_an_owner();
CREATE CONSTRAINT TRIGGER scim_groups_keep_an_owner
    AFTER UPDATE OR DELETE ON arx.scim_groups DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION arx.keep_an_owner();

-- --- machines that administer -------------------------------------------------------

-- "arxadm_<id>_<secret>", stored like agent keys (SHA-256 of a 256-bit secret).
-- A token's roles never exceed those of whoever made it; "scim" is the role
-- of an IdP's provisioning client and grants nothing but /scim/v2.
CREATE TABLE arx.admin_tokens (
    id            text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    org_id        uuid NOT NULL REFERENCES arx.orgs (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    roles         text[] NOT NULL CHECK (cardinality(roles) >= 1 AND roles <@ ARRAY[
                      'owner', 'admin', 'policy_author', 'reviewer', 'auditor', 'scim']),
    secret_hash   bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_by    text NOT NULL,
    -- The person behind it (directly, or through the token that made it); its
    -- roles never exceed theirs at the time of use. NULL: bootstrap or seed.
    created_by_user uuid REFERENCES arx.users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    last_used_at  timestamptz,
    replaced_by   text,
    revoked_at    timestamptz,
    revoked_by    text,
    UNIQUE (org_id, id)
);

-- --- web sessions, sign-in throttling, SAML replay --------------------------------
-- Not tenant data: a session belongs to a person, who may act in several orgs.
-- Only the control plane can reach these tables.

CREATE TABLE arx.web_sessions (
    id_hash     bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    user_id     uuid NOT NULL REFERENCES arx.users (id),
    email       text NOT NULL,
    csrf_token  text NOT NULL,
    method      text NOT NULL CHECK (method IN ('password', 'oidc', 'saml')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX web_sessions_user ON arx.web_sessions (user_id);

CREATE TABLE arx.sign_in_failures (
    throttle_key  text NOT NULL,
    failed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_key ON arx.sign_in_failures (throttle_key, failed_at);

-- AuthnRequests ARX sent and not yet answered: a SAML response must answer
-- one of them, once (no unsolicited, IdP-initiated responses).
CREATE TABLE arx.saml_requests (
    request_id  text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE arx.saml_assertions_seen (
    assertion_id     text PRIMARY KEY,
    not_on_or_after  timestamptz NOT NULL
);

-- --- tenancy ------------------------------------------------------------------------

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['memberships', 'scim_groups', 'scim_group_members',
                             'admin_tokens'] LOOP
        EXECUTE format('ALTER TABLE arx.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE arx.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON arx.%I TO arx_control '
            'USING (org_id = (SELECT NULLIF(current_setting(''arx.org_id'', true), '''')::uuid)) '
            'WITH CHECK (org_id = (SELECT NULLIF(current_setting(''arx.org_id'', true), '''')::uuid))',
            t);
    END LOOP;
END
$$;
-- The existing tenant tables: the control plane sees one org per transaction too.
ALTER POLICY tenant_isolation ON arx.orgs TO arx_app, arx_control;
ALTER POLICY tenant_isolation ON arx.agents TO arx_app, arx_control;
ALTER POLICY tenant_isolation ON arx.api_keys TO arx_app, arx_control;
ALTER POLICY tenant_isolation ON arx.credentials TO arx_app, arx_control;
ALTER POLICY tenant_isolation ON arx.audit_events TO arx_app, arx_control;
ALTER POLICY tenant_isolation ON arx.approval_requests TO arx_app, arx_control;

-- Not tenant data (people act across orgs; sessions, throttles and SAML state
-- belong to no org): forced under RLS anyway, so that only the control plane
-- and the identity functions reach them, each through a policy named for it.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['user_identities', 'web_sessions', 'sign_in_failures',
                             'saml_requests', 'saml_assertions_seen'] LOOP
        EXECUTE format('ALTER TABLE arx.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE arx.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY control_plane ON arx.%I TO arx_control '
                       'USING (true) WITH CHECK (true)', t);
    END LOOP;
END
$$;

-- A user is visible in an org only through a membership of that org; users
-- are created by arx.user_for_email only.
ALTER TABLE arx.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE arx.users FORCE ROW LEVEL SECURITY;
CREATE POLICY member_of_org ON arx.users FOR SELECT TO arx_control
    USING (EXISTS (SELECT FROM arx.memberships m WHERE m.user_id = users.id));

-- --- who is signing in, before any org is known ---------------------------------------
-- SECURITY DEFINER, owned by arx_identity: these read across orgs, so each returns
-- exactly what sign-in needs and nothing else.

-- The user with this email, created if absent. Lets an org add a person who
-- already belongs to another org without learning that they do: the answer
-- is the same either way.
CREATE FUNCTION arx.user_for_email(p_email text) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found_id uuid;
BEGIN
    INSERT INTO arx.users (id, email) VALUES (gen_random_uuid(), p_email)
    ON CONFLICT ((lower(email))) DO NOTHING
    RETURNING id INTO found_id;
    IF found_id IS NULL THEN
        SELECT id INTO found_id FROM arx.users WHERE lower(email) = lower(p_email);
    END IF;
    RETURN found_id;
END
$$;

-- For a password sign-in: the hash to check (NULL when there is none).
CREATE FUNCTION arx.password_for_email(p_email text,
    OUT user_id uuid, OUT email text, OUT password_hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT u.id, u.email, u.password_hash FROM arx.users u WHERE lower(u.email) = lower(p_email)
$$;

-- A local password, set once, for someone who belongs to the org of this
-- transaction and to no other (a founding owner): nobody can set the
-- credential a person uses for another org. False when refused.
CREATE FUNCTION arx.set_password(p_user uuid, p_hash text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    org uuid := NULLIF(current_setting('arx.org_id', true), '')::uuid;
BEGIN
    IF org IS NULL
       OR NOT EXISTS (SELECT FROM arx.memberships WHERE user_id = p_user AND org_id = org)
       OR EXISTS (SELECT FROM arx.memberships WHERE user_id = p_user AND org_id <> org) THEN
        RETURN false;
    END IF;
    UPDATE arx.users SET password_hash = p_hash WHERE id = p_user AND password_hash IS NULL;
    RETURN FOUND;
END
$$;

-- For an IdP sign-in: the user linked to (issuer, subject); failing that,
-- when the IdP vouches for the email (p_email_verified), the user with that
-- email is linked and returned. Never creates a user: people are added by
-- an admin or by SCIM first.
CREATE FUNCTION arx.user_for_identity(p_issuer text, p_subject text, p_email text,
    p_email_verified boolean) RETURNS TABLE (user_id uuid, email text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    found_id uuid;
BEGIN
    SELECT i.user_id INTO found_id FROM arx.user_identities i
     WHERE i.issuer = p_issuer AND i.subject = p_subject;
    IF found_id IS NULL AND p_email_verified AND p_email IS NOT NULL THEN
        SELECT u.id INTO found_id FROM arx.users u WHERE lower(u.email) = lower(p_email);
        IF found_id IS NOT NULL THEN
            INSERT INTO arx.user_identities (issuer, subject, user_id)
            VALUES (p_issuer, p_subject, found_id) ON CONFLICT DO NOTHING;
        END IF;
    END IF;
    RETURN QUERY SELECT u.id, u.email FROM arx.users u WHERE u.id = found_id;
END
$$;

-- A person's sign-in email, changed by the org of this transaction (its SCIM
-- client) only while they belong to no other org, active or not, and have no
-- local password. Their links to IdP identities and their web sessions end
-- with it: a new address must be vouched for again before it signs anyone
-- in. Otherwise one org's IdP could move someone's sign-in to an address it
-- controls and take over their access elsewhere. False when refused.
CREATE FUNCTION arx.change_email(p_user uuid, p_email text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    org uuid := NULLIF(current_setting('arx.org_id', true), '')::uuid;
BEGIN
    IF org IS NULL
       OR NOT EXISTS (SELECT FROM arx.memberships WHERE user_id = p_user AND org_id = org)
       OR EXISTS (SELECT FROM arx.memberships WHERE user_id = p_user AND org_id <> org)
       OR EXISTS (SELECT FROM arx.users WHERE id = p_user AND password_hash IS NOT NULL) THEN
        RETURN false;
    END IF;
    UPDATE arx.users SET email = p_email WHERE id = p_user;
    DELETE FROM arx.user_identities WHERE user_id = p_user;
    UPDATE arx.web_sessions SET revoked_at = now() WHERE user_id = p_user AND revoked_at IS NULL;
    RETURN true;
END
$$;

-- The orgs a user may act in, with the roles they hold there.
CREATE FUNCTION arx.user_orgs(p_user uuid)
RETURNS TABLE (org_id uuid, slug text, name text, roles text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT o.id, o.slug, o.name, arx.effective_roles(o.id, p_user)
      FROM arx.memberships m JOIN arx.orgs o ON o.id = m.org_id
     WHERE m.user_id = p_user AND m.active
     ORDER BY o.slug
$$;

-- A user's identity for a request in one org: their roles there (empty when
-- not an active member: the caller answers exactly as for an org that does
-- not exist).
CREATE FUNCTION arx.user_access(p_user uuid, p_org uuid,
    OUT email text, OUT roles text[], OUT admin_allowlist cidr[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT u.email, arx.effective_roles(p_org, p_user), o.admin_allowlist
      FROM arx.users u, arx.orgs o
     WHERE u.id = p_user AND o.id = p_org
$$;

-- An admin token, before its org is known. The caller compares the hash in
-- constant time; expiry and revocation are checked here. A token made by a
-- person holds no role that person no longer holds in the org (scim only
-- while they are an owner): offboarding someone disarms their tokens.
CREATE FUNCTION arx.resolve_admin_token(p_token_id text,
    OUT org_id uuid, OUT name text, OUT roles text[], OUT secret_hash bytea,
    OUT admin_allowlist cidr[], OUT expires_at timestamptz, OUT created_by_user uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.org_id, t.name,
           CASE WHEN t.created_by_user IS NULL THEN t.roles
                ELSE ARRAY(SELECT r FROM unnest(t.roles) r
                            WHERE r = ANY (creator.roles)
                               OR (r = 'scim' AND 'owner' = ANY (creator.roles))
                            ORDER BY r) END,
           t.secret_hash, o.admin_allowlist, t.expires_at, t.created_by_user
      FROM arx.admin_tokens t
      JOIN arx.orgs o ON o.id = t.org_id
      CROSS JOIN LATERAL (SELECT arx.effective_roles(t.org_id, t.created_by_user) AS roles) creator
     WHERE t.id = p_token_id AND t.revoked_at IS NULL
       AND (t.expires_at IS NULL OR t.expires_at > now())
$$;

-- Whether any org has an owner yet: the bootstrap token works only until one does.
CREATE FUNCTION arx.owner_exists() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM arx.memberships WHERE 'owner' = ANY (roles))
        OR EXISTS (SELECT FROM arx.admin_tokens WHERE 'owner' = ANY (roles))
$$;

-- --- the agent path: key resolution with lifecycle and switches --------------------

DROP FUNCTION arx.resolve_api_key(text);
CREATE FUNCTION arx.resolve_api_key(p_key_id text)
RETURNS TABLE (org_id uuid, org_slug text, agent_id uuid, agent_name text,
               intent jsonb, secret_hash bytea, expires_at timestamptz,
               agent_disabled boolean, org_disabled boolean, agent_allowlist cidr[])
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.org_id, o.slug, k.agent_id, a.name, a.intent, k.secret_hash, k.expires_at,
           a.disabled_at IS NOT NULL, o.agents_disabled_at IS NOT NULL, o.agent_allowlist
    FROM arx.api_keys k
    JOIN arx.agents a ON a.id = k.agent_id
    JOIN arx.orgs o ON o.id = k.org_id
    WHERE k.id = p_key_id AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > now())
$$;

RESET ROLE;

ALTER FUNCTION arx.resolve_api_key(text) OWNER TO arx_auth;
REVOKE ALL ON FUNCTION arx.resolve_api_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.resolve_api_key(text) TO arx_app;

-- Last use, at most once a minute per key and process (arx.identity.auth
-- batches it): never a write per request.
GRANT UPDATE (last_used_at) ON arx.api_keys TO arx_auth;
CREATE POLICY key_touch ON arx.api_keys FOR UPDATE TO arx_auth USING (true) WITH CHECK (true);
CREATE FUNCTION arx.touch_api_keys(p_ids text[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE arx.api_keys SET last_used_at = now()
     WHERE id = ANY (p_ids) AND (last_used_at IS NULL OR last_used_at < now() - interval '30 seconds')
$$;
ALTER FUNCTION arx.touch_api_keys(text[]) OWNER TO arx_auth;
REVOKE ALL ON FUNCTION arx.touch_api_keys(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.touch_api_keys(text[]) TO arx_app;

-- The definer functions run as arx_identity: FORCE'd row-level security
-- applies to it too, through policies that let it see across orgs.
GRANT SELECT ON arx.orgs, arx.users, arx.memberships, arx.scim_groups, arx.scim_group_members,
    arx.admin_tokens, arx.user_identities TO arx_identity;
GRANT INSERT ON arx.users, arx.user_identities TO arx_identity;
GRANT DELETE ON arx.user_identities TO arx_identity;
GRANT UPDATE (password_hash, email) ON arx.users TO arx_identity;
GRANT SELECT, UPDATE (revoked_at) ON arx.web_sessions TO arx_identity;
CREATE POLICY identity_lookup ON arx.web_sessions TO arx_identity USING (true) WITH CHECK (true);
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['orgs', 'users', 'memberships', 'scim_groups', 'scim_group_members',
                             'admin_tokens', 'user_identities'] LOOP
        EXECUTE format('CREATE POLICY identity_lookup ON arx.%I TO arx_identity '
                       'USING (true) WITH CHECK (true)', t);
    END LOOP;
END
$$;
ALTER FUNCTION arx.user_for_email(text) OWNER TO arx_identity;
ALTER FUNCTION arx.password_for_email(text) OWNER TO arx_identity;
ALTER FUNCTION arx.set_password(uuid, text) OWNER TO arx_identity;
ALTER FUNCTION arx.user_for_identity(text, text, text, boolean) OWNER TO arx_identity;
ALTER FUNCTION arx.user_orgs(uuid) OWNER TO arx_identity;
ALTER FUNCTION arx.user_access(uuid, uuid) OWNER TO arx_identity;
ALTER FUNCTION arx.resolve_admin_token(text) OWNER TO arx_identity;
ALTER FUNCTION arx.owner_exists() OWNER TO arx_identity;
ALTER FUNCTION arx.change_email(uuid, text) OWNER TO arx_identity;
GRANT EXECUTE ON FUNCTION arx.effective_roles(uuid, uuid) TO arx_identity;

REVOKE ALL ON FUNCTION arx.change_email(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.change_email(uuid, text) TO arx_control;
REVOKE ALL ON FUNCTION arx.user_for_email(text), arx.password_for_email(text),
    arx.set_password(uuid, text), arx.user_for_identity(text, text, text, boolean),
    arx.user_orgs(uuid), arx.user_access(uuid, uuid), arx.resolve_admin_token(text),
    arx.owner_exists(), arx.effective_roles(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.user_for_email(text), arx.password_for_email(text),
    arx.set_password(uuid, text), arx.user_for_identity(text, text, text, boolean),
    arx.user_orgs(uuid), arx.user_access(uuid, uuid), arx.resolve_admin_token(text),
    arx.owner_exists(), arx.effective_roles(uuid, uuid), arx.enter_org(uuid),
    arx.org_id_for_slug(text) TO arx_control;

-- The agent path's cache of keys is emptied by NOTIFY within milliseconds;
-- this check closes even that window where it matters. It runs inside the
-- one statement that opens every execute (arx.keyed_execute_context), so a
-- key revoked, or an agent or org switched off, is refused by the database
-- at the decision point on every process, for no extra round trip.
-- plpgsql, not sql: a SQL function that cannot be inlined (SECURITY DEFINER,
-- SET search_path) is planned again on every call; plpgsql keeps its plan.
CREATE FUNCTION arx.key_state(p_key text, p_org uuid, p_agent uuid) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k record;
BEGIN
    SELECT k2.org_id, k2.agent_id, k2.revoked_at, k2.expires_at, a.disabled_at,
           o.agents_disabled_at
      INTO k
      FROM arx.api_keys k2
      JOIN arx.agents a ON a.id = k2.agent_id
      JOIN arx.orgs o ON o.id = k2.org_id
     WHERE k2.id = p_key;
    IF NOT FOUND OR k.revoked_at IS NOT NULL OR k.agent_id <> p_agent OR k.org_id <> p_org
       OR (k.expires_at IS NOT NULL AND k.expires_at <= now()) THEN
        RETURN 'invalid';
    ELSIF k.disabled_at IS NOT NULL THEN
        RETURN 'agent_disabled';
    ELSIF k.agents_disabled_at IS NOT NULL THEN
        RETURN 'org_disabled';
    END IF;
    RETURN 'ok';
END
$$;
ALTER FUNCTION arx.key_state(text, uuid, uuid) OWNER TO arx_auth;
REVOKE ALL ON FUNCTION arx.key_state(text, uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.key_state(text, uuid, uuid) TO arx_app;
GRANT SELECT ON arx.orgs, arx.agents TO arx_auth;

SET ROLE arx_owner;
-- SQLSTATEs of class AX (ARX): AX401 key no longer valid, AX403 agent
-- switched off, AX423 every agent of the org switched off (arx.db.errors).
CREATE FUNCTION arx.keyed_execute_context(p_key text, p_org uuid, p_agent uuid,
    p_connector text, p_recent integer,
    OUT credential_id uuid, OUT credential_version integer, OUT base_url text,
    OUT kek_id text, OUT wrapped_dek bytea, OUT nonce bytea, OUT ciphertext bytea,
    OUT head_seq bigint, OUT head_tallies bigint[], OUT session text)
LANGUAGE plpgsql AS $$
DECLARE
    state text := arx.key_state(p_key, p_org, p_agent);
BEGIN
    IF state = 'invalid' THEN
        RAISE EXCEPTION 'API key no longer valid' USING ERRCODE = 'AX401';
    ELSIF state = 'agent_disabled' THEN
        RAISE EXCEPTION 'agent disabled' USING ERRCODE = 'AX403';
    ELSIF state = 'org_disabled' THEN
        RAISE EXCEPTION 'org agents disabled' USING ERRCODE = 'AX423';
    END IF;
    SELECT c.credential_id, c.credential_version, c.base_url, c.kek_id, c.wrapped_dek,
           c.nonce, c.ciphertext, c.head_seq, c.head_tallies, c.session
      INTO credential_id, credential_version, base_url, kek_id, wrapped_dek,
           nonce, ciphertext, head_seq, head_tallies, session
      FROM arx.execute_context(p_org, p_agent, p_connector, p_recent) c;
END
$$;
RESET ROLE;
REVOKE ALL ON FUNCTION arx.keyed_execute_context(text, uuid, uuid, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.keyed_execute_context(text, uuid, uuid, text, integer) TO arx_app;

-- --- invalidation: NOTIFY arx_auth at commit ------------------------------------------

CREATE FUNCTION arx.notify_auth_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('arx_auth', TG_TABLE_NAME || ':' || OLD.id::text);
    RETURN NULL;
END
$$;
ALTER FUNCTION arx.notify_auth_change() OWNER TO arx_owner;
-- Not on last_used_at: touching a key must not empty every cache each minute.
CREATE TRIGGER api_keys_notify
    AFTER UPDATE OF revoked_at, expires_at, secret_hash, agent_id, org_id OR DELETE ON arx.api_keys
    FOR EACH ROW EXECUTE FUNCTION arx.notify_auth_change();
CREATE TRIGGER agents_notify AFTER UPDATE OR DELETE ON arx.agents
    FOR EACH ROW EXECUTE FUNCTION arx.notify_auth_change();
CREATE TRIGGER orgs_notify AFTER UPDATE OR DELETE ON arx.orgs
    FOR EACH ROW EXECUTE FUNCTION arx.notify_auth_change();
ALTER TABLE arx.api_keys ENABLE ALWAYS TRIGGER api_keys_notify;
ALTER TABLE arx.agents ENABLE ALWAYS TRIGGER agents_notify;
ALTER TABLE arx.orgs ENABLE ALWAYS TRIGGER orgs_notify;

-- A refusal before policy (arx.audit.refusals), in one round trip.
SET ROLE arx_owner;
CREATE FUNCTION arx.record_refusal(p_id uuid, p_org uuid, p_agent uuid, p_action text,
    p_details jsonb, p_actor text, p_request_id text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM arx.enter_org(p_org);
    INSERT INTO arx.audit_events (id, org_id, kind, agent_id, action, details, actor, request_id)
    VALUES (p_id, p_org, 'refusal', p_agent, p_action, p_details, p_actor, p_request_id);
END
$$;
RESET ROLE;
REVOKE ALL ON FUNCTION arx.record_refusal(uuid, uuid, uuid, text, jsonb, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.record_refusal(uuid, uuid, uuid, text, jsonb, text, text) TO arx_app;

-- --- privileges ---------------------------------------------------------------------------

-- The agent path keeps only what executing needs.
REVOKE INSERT ON arx.orgs, arx.agents, arx.api_keys, arx.credentials FROM arx_app;
REVOKE SELECT ON arx.api_keys FROM arx_app;

GRANT SELECT, INSERT ON arx.orgs, arx.agents, arx.api_keys, arx.credentials,
    arx.audit_events, arx.approval_requests TO arx_control;
GRANT UPDATE (name, agents_disabled_at, agents_disabled_reason, agent_allowlist,
    admin_allowlist) ON arx.orgs TO arx_control;
GRANT UPDATE (disabled_at, disabled_reason) ON arx.agents TO arx_control;
GRANT UPDATE (expires_at, replaced_by, revoked_at, revoked_by) ON arx.api_keys TO arx_control;
-- People are created, and their email or password changed, only through the
-- identity functions above; the control plane never reads a password hash.
GRANT SELECT (id, email, created_at) ON arx.users TO arx_control;
GRANT SELECT, INSERT, UPDATE ON arx.memberships, arx.scim_groups, arx.admin_tokens TO arx_control;
GRANT SELECT, INSERT, DELETE ON arx.scim_group_members TO arx_control;
GRANT DELETE ON arx.memberships, arx.scim_groups TO arx_control;
GRANT SELECT, INSERT, UPDATE, DELETE ON arx.web_sessions, arx.sign_in_failures,
    arx.saml_requests, arx.saml_assertions_seen TO arx_control;
