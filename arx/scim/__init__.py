"""SCIM 2.0 provisioning (RFC 7643/7644): an org's IdP manages its people and groups.

A SCIM ``User`` of org X is a membership of X (its ``id`` is the person's
id); a ``Group`` is one of X's SCIM groups, and a group named
``arx-<role>`` gives its members that role (``arx.effective_roles``).
Everything runs in one org-scoped transaction and leaves an audit event in
the same transaction.
"""
