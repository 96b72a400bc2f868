# METADATA
# title: Example org policy tests
# description: |
#   Drive data.arx.decision with this bundle's data (data.orgs.example) and the
#   CrowdStrike operation table the demo uses.
#
#   The package is orgs_test.example, not orgs.example_test: anything under
#   data.orgs is reachable from data.orgs[input.org.slug], so a test package
#   there that calls data.arx.decision would make the policy recursive.
package orgs_test.example

import data.arx

now := "2026-11-25T17:05:00Z"

now_ns := 1795626300000000000

# The counts of one window; ARX computes them in PostgreSQL.
window(reads, writes, containments, denied) := {
	"actions": (reads + writes) + containments,
	"non_read": writes + containments,
	"denied": denied,
	"targets": writes + containments,
	"kinds": {"read": reads, "write": writes, "containment": containments, "destructive": 0},
}

# A new agent: no history at all.
no_history := {"recent": [], "windows": {"1m": window(0, 0, 0, 0), "5m": window(0, 0, 0, 0), "60m": window(0, 0, 0, 0)}}

triage_bot := {
	"id": "0b6f3c2e-5d1a-4c0e-9a57-3f0e7d1c0001",
	"name": "triage-bot",
	"intent": {
		"purpose": "Look up hosts named in alerts and summarise them for the SOC",
		"scope": {"crowdstrike": ["hosts:search", "hosts:get"]},
	},
}

responder_bot := {
	"id": "0b6f3c2e-5d1a-4c0e-9a57-3f0e7d1c0002",
	"name": "responder-bot",
	"intent": {
		"purpose": "Contain compromised hosts and release them once cleaned",
		"scope": {"crowdstrike": ["hosts:*"]},
	},
}

# The Falcon operations as ARX sends them, from the operation tables
# (data.arx.catalog, which the base library ships): never a copy.
operations[name] := {
	"name": name,
	"kind": op.kind,
	"base_risk": op.base_risk,
	"reversible": op.reversible,
	"target_type": op.target_type,
} if some name, op in data.arx.catalog.crowdstrike

# Falcon has no write or destructive operation ARX runs: these two test the
# org's defaults for those kinds (and exist in no table, which is checked).
operations["hosts:update"] := {"name": "hosts:update", "kind": "write", "base_risk": 30, "reversible": true, "target_type": "host"}

operations["hosts:hide"] := {"name": "hosts:hide", "kind": "destructive", "base_risk": 50, "reversible": false, "target_type": "host"}

test_the_kinds_only_tested_here_are_in_no_table if {
	not data.arx.catalog.crowdstrike["hosts:update"]
	not data.arx.catalog.crowdstrike["hosts:hide"]
}

call(agent, operation) := {
	"agent": agent,
	"org": {"id": "0b6f3c2e-5d1a-4c0e-9a57-3f0e7d1c00aa", "slug": "example"},
	"connector": "crowdstrike",
	"operation": operations[operation],
	"params": {"ids": ["a1b2c3d4e5f6"]},
	"target_count": 1,
	"session_context": no_history,
	"now": now,
	"now_ns": now_ns,
}

# A session with five containments in the last five minutes: the
# write-burst factor (+20). The recent list is context; the windows count.
busy_session := {
	"recent": [{
		"connector": "crowdstrike",
		"operation": "hosts:contain",
		"kind": "containment",
		"verdict": "ESCALATE",
		"at_ns": now_ns - (i * 60000000000),
	} |
		some i in numbers.range(1, 5)
	],
	"windows": {"1m": window(0, 0, 1, 0), "5m": window(0, 0, 5, 0), "60m": window(12, 0, 5, 0)},
}

with_session(call, session) := json.patch(call, [{"op": "replace", "path": "/session_context", "value": session}])

decide(i) := d if {
	d := arx.decision with input as i
}

test_triage_bot_search_is_permitted_by_the_read_default if {
	decide(call(triage_bot, "hosts:search")) == {
		"verdict": "PERMIT",
		"risk_score": 10,
		"policy_id": "default:read",
		"reasons": ["no rule matched; org default for read operations is PERMIT"],
	}
}

test_triage_bot_get_is_permitted_by_the_read_default if {
	d := decide(call(triage_bot, "hosts:get"))
	d.verdict == "PERMIT"
	d.policy_id == "default:read"
}

test_triage_bot_contain_is_outside_intent_and_denied_at_high_risk if {
	decide(call(triage_bot, "hosts:contain")) == {
		"verdict": "DENY",
		"risk_score": 100,
		"policy_id": "EX-001",
		"reasons": [
			"Deny any action scored at high risk (>= 80)",
			"operation outside declared intent: crowdstrike hosts:contain",
		],
	}
}

test_responder_bot_contain_needs_approval if {
	decide(call(responder_bot, "hosts:contain")) == {
		"verdict": "ESCALATE",
		"risk_score": 60,
		"policy_id": "EX-010",
		"reasons": ["Host containment needs a human approval"],
	}
}

test_responder_bot_lift_containment_is_permitted if {
	decide(call(responder_bot, "hosts:lift_containment")) == {
		"verdict": "PERMIT",
		"risk_score": 40,
		"policy_id": "EX-020",
		"reasons": ["responder-bot may lift a host's containment while its risk stays below 60"],
	}
}

test_first_match_wins_lift_rule_before_containment_rule if {
	# EX-020 (priority 30) and EX-010 (priority 40) both match; EX-020 wins.
	decide(call(responder_bot, "hosts:lift_containment")).policy_id == "EX-020"
}

test_first_match_wins_high_risk_deny_before_containment_approval if {
	# A write burst lifts the responder's containment to 80: EX-001 (priority
	# 10) wins over EX-010 (priority 40), which also matches.
	i := with_session(call(responder_bot, "hosts:contain"), busy_session)
	d := decide(i)
	d.verdict == "DENY"
	d.risk_score == 80
	d.policy_id == "EX-001"
	d.reasons == [
		"Deny any action scored at high risk (>= 80)",
		"write burst: 5 non-read actions in the last 5 minutes",
	]
}

test_lift_during_a_burst_falls_through_to_containment_approval if {
	# Risk 60 is above EX-020's max_risk, so EX-010 decides.
	i := with_session(call(responder_bot, "hosts:lift_containment"), busy_session)
	d := decide(i)
	d.verdict == "ESCALATE"
	d.risk_score == 60
	d.policy_id == "EX-010"
}

test_lift_by_another_in_scope_agent_needs_approval if {
	ops_bot := object.union(responder_bot, {"name": "ops-bot"})
	d := decide(call(ops_bot, "hosts:lift_containment"))
	d.verdict == "ESCALATE"
	d.policy_id == "EX-010"
}

test_write_escalates_by_default if {
	d := decide(call(responder_bot, "hosts:update"))
	d.verdict == "ESCALATE"
	d.risk_score == 30
	d.policy_id == "default:write"
}

test_destructive_operations_are_denied_by_rule if {
	d := decide(call(responder_bot, "hosts:hide"))
	d.verdict == "DENY"
	d.policy_id == "EX-005"
}

test_rules_are_well_formed if {
	data.arx.org.valid with input as call(triage_bot, "hosts:search")
	count(data.arx.org.errors) == 0 with input as call(triage_bot, "hosts:search")
}

test_other_orgs_get_no_policy_from_this_bundle if {
	i := object.union(call(triage_bot, "hosts:search"), {"org": {"slug": "not-example"}})
	decide(i).policy_id == "arx.no_org_policy"
}

# "More than three containments in five minutes" as an org rule: min_counts
# holds when each named count is at least its minimum. The example bundle does
# not ship it; this shows how an org would add it to its rules.
containment_spree := {
	"id": "EX-030",
	"priority": 15,
	"description": "No more than three host containments in five minutes",
	"verdict": "DENY",
	"match": {"kinds": ["containment"], "min_counts": {"5m": {"containment": 4}}},
}

with_spree_rule := array.concat(data.orgs.example.rules, [containment_spree])

spree_session(containments) := {
	"recent": [],
	"windows": {"1m": window(0, 0, 1, 0), "5m": window(0, 0, containments, 0), "60m": window(0, 0, containments, 0)},
}

test_a_fourth_containment_in_five_minutes_is_denied_by_a_spree_rule if {
	i := with_session(call(responder_bot, "hosts:contain"), spree_session(4))
	d := arx.decision with input as i with data.orgs.example.rules as with_spree_rule
	d.verdict == "DENY"
	d.policy_id == "EX-030"
	d.reasons[0] == "No more than three host containments in five minutes"
}

test_three_containments_in_five_minutes_still_need_approval if {
	i := with_session(call(responder_bot, "hosts:contain"), spree_session(3))
	d := arx.decision with input as i with data.orgs.example.rules as with_spree_rule
	d.verdict == "ESCALATE"
	d.policy_id == "EX-012"
	d.approvals_required == 2
}

test_a_third_containment_in_five_minutes_needs_two_reviewers if {
	d := decide(with_session(call(responder_bot, "hosts:contain"), spree_session(2)))
	d.verdict == "ESCALATE"
	d.policy_id == "EX-012"
	d.approvals_required == 2
	d.approval_ttl_seconds == 1800
}

test_a_second_containment_needs_one_reviewer if {
	d := decide(with_session(call(responder_bot, "hosts:contain"), spree_session(1)))
	d.policy_id == "EX-010"
	not d.approvals_required
}

test_lifting_containment_is_not_held_to_the_two_person_rule if {
	d := decide(with_session(call(responder_bot, "hosts:lift_containment"), spree_session(2)))
	d.policy_id == "EX-020"
}

test_spree_rule_is_well_formed if {
	data.arx.org.valid with input as call(triage_bot, "hosts:search") with data.orgs.example.rules as with_spree_rule
}

test_cheap_reads_do_not_hide_a_burst if {
	# Padding the history with reads cannot push writes out of a window: the
	# windows count over time, not over the last N entries.
	padded := json.patch(busy_session, [{"op": "replace", "path": "/windows/5m", "value": window(500, 0, 5, 0)}])
	d := decide(with_session(call(responder_bot, "hosts:contain"), padded))
	d.risk_score == 80
	d.policy_id == "EX-001"
}

# Rules on the call's params (match.params): EX-013 reads the org's own list
# of critical hosts (data.orgs.example.lists.critical_hosts), EX-014 counts
# the hosts of one call. ARX counts the targets too (input.target_count), for
# the blast-radius factor of the risk score: +3 a host beyond the first, at
# most +15.

critical_host := "9e8f7a6b5c4d4e3f9a1b2c3d4e5f6a7b"

hosts(n) := [sprintf("%032x", [i]) | some i in numbers.range(1, n)]

# The call naming these host ids (the targets ARX counts: distinct ids).
naming(i, ids) := json.patch(i, [
	{"op": "replace", "path": "/params", "value": {"ids": ids}},
	{"op": "replace", "path": "/target_count", "value": count({id | some id in ids})},
])

test_containing_more_than_five_hosts_in_one_call_escalates if {
	d := decide(naming(call(responder_bot, "hosts:contain"), hosts(6)))
	d == {
		"verdict": "ESCALATE",
		"risk_score": 75,
		"policy_id": "EX-014",
		"reasons": [
			"Containing more than five hosts in one call needs a human approval",
			"blast radius: 6 targets in one call",
		],
	}
}

test_containing_five_hosts_is_the_usual_containment_approval if {
	d := decide(naming(call(responder_bot, "hosts:contain"), hosts(5)))
	d.verdict == "ESCALATE"
	d.policy_id == "EX-010"
	d.risk_score == 72
	d.reasons == ["Host containment needs a human approval", "blast radius: 5 targets in one call"]
}

test_containing_a_critical_host_needs_two_reviewers if {
	d := decide(naming(call(responder_bot, "hosts:contain"), [critical_host]))
	d == {
		"verdict": "ESCALATE",
		"risk_score": 60,
		"policy_id": "EX-013",
		"reasons": ["Containing a host listed as critical needs two reviewers"],
		"approvals_required": 2,
	}
}

test_a_critical_host_among_many_still_needs_two_reviewers if {
	# EX-013 (priority 36) ranks before the bulk rule EX-014 (38).
	d := decide(naming(call(responder_bot, "hosts:contain"), array.concat(hosts(7), [critical_host])))
	d.policy_id == "EX-013"
	d.approvals_required == 2
	d.risk_score == 75
}

test_a_third_containment_keeps_its_shorter_expiry_for_critical_hosts if {
	# EX-012 (priority 35) decides first: two reviewers within 30 minutes.
	i := with_session(naming(call(responder_bot, "hosts:contain"), [critical_host]), spree_session(2))
	d := decide(i)
	d.policy_id == "EX-012"
	d.approvals_required == 2
	d.approval_ttl_seconds == 1800
}

test_lifting_a_critical_hosts_containment_is_not_held_to_two_reviewers if {
	d := decide(naming(call(responder_bot, "hosts:lift_containment"), [critical_host]))
	d.verdict == "PERMIT"
	d.policy_id == "EX-020"
}

test_bulk_containment_in_a_burst_is_denied_at_high_risk if {
	# 60 + 15 (six hosts) + 20 (write burst) = 95: EX-001 denies before any
	# escalation rule is tried.
	d := decide(with_session(naming(call(responder_bot, "hosts:contain"), hosts(6)), busy_session))
	d.verdict == "DENY"
	d.policy_id == "EX-001"
	d.risk_score == 95
}

test_duplicate_ids_are_one_target if {
	d := decide(naming(call(responder_bot, "hosts:contain"), [critical_host, critical_host]))
	d.risk_score == 60
	d.policy_id == "EX-013"
}

# The push check: a rule may only name params that the operations it can
# match declare (data.arx.catalog, generated from the operation tables).

with_rule(rule) := array.concat(data.orgs.example.rules, [rule])

# Errors name a rule by its position: the added one's, and EX-013's (so the
# tests hold when rules are added to the bundle).
added_rule_error(msg) := sprintf("org rule #%d: %s", [count(data.orgs.example.rules), msg])

rule_error(id, msg) := sprintf("org rule #%d: %s", [i, msg]) if {
	some i, rule in data.orgs.example.rules
	rule.id == id
}

by_hostname := {
	"id": "EX-040",
	"priority": 37,
	"description": "Containing a domain controller needs two reviewers",
	"verdict": "ESCALATE",
	"match": {
		"connectors": ["crowdstrike"],
		"operations": ["hosts:contain"],
		"params": {"hostnames": {"glob": "SRV-DC-*"}},
	},
	"approval": {"required": 2},
}

test_the_example_rules_pass_the_push_check if {
	data.arx.org.valid with input as {"org": {"slug": "example"}}
	data.arx.org.errors == set() with input as {"org": {"slug": "example"}}
}

test_a_param_the_operation_does_not_declare_fails_the_push_check if {
	i := {"org": {"slug": "example"}}
	not data.arx.org.valid with input as i with data.orgs.example.rules as with_rule(by_hostname)
	expected := added_rule_error("match.params.hostnames is not a param of crowdstrike hosts:contain")
	data.arx.org.errors == {expected} with input as i
		with data.orgs.example.rules as with_rule(by_hostname)
}

test_a_params_rule_over_every_host_operation_needs_each_to_declare_the_param if {
	# hosts:search has no ids: the bulk rule cannot be widened to hosts:*.
	i := {"org": {"slug": "example"}}
	some bulk in data.orgs.example.rules
	bulk.id == "EX-014"
	wide := json.patch(bulk, [{"op": "replace", "path": "/match/operations", "value": ["hosts:*"]}])
	expected := added_rule_error("match.params.ids is not a param of crowdstrike hosts:search")
	data.arx.org.errors == {expected} with input as i
		with data.orgs.example.rules as with_rule(object.union(wide, {"id": "EX-041"}))
}

missing_list := rule_error("EX-013", "match.params.ids.any_in names critical_hosts, which is not a list of strings in the org's lists")

test_a_list_the_org_does_not_have_fails_the_push_check if {
	i := {"org": {"slug": "example"}}
	without_lists := object.remove(data.orgs.example, ["lists"])
	not data.arx.org.valid with input as i with data.orgs.example as without_lists
	data.arx.org.errors == {missing_list} with input as i
		with data.orgs.example as without_lists
}

test_a_call_reaching_a_rule_whose_list_is_missing_is_denied if {
	# Loaded without the push check: the rule counts as matching, and as it
	# is malformed it cannot decide.
	without_lists := object.remove(data.orgs.example, ["lists"])
	d := arx.decision with input as call(responder_bot, "hosts:contain") with data.orgs.example as without_lists
	d.verdict == "DENY"
	d.policy_id == "arx.invalid_org_policy"
	d.reasons == [missing_list]
}

# --- the other connectors (operations from data.arx.catalog) ---------------------

# An agent trusted with every tool, so the rules below decide, not its scope.
soc_bot := {
	"id": "5a1e0c9d-7b3f-4e2a-9c81-2d6f0b4a7e33",
	"name": "soc-bot",
	"intent": {
		"purpose": "Respond to incidents across the SOC's tools.",
		"scope": {
			"okta": ["users:*", "sessions:*", "groups:*"],
			"jira": ["issues:*"],
			"splunk": ["search:*", "notable:*"],
			"sentinel": ["incidents:*"],
		},
	},
}

call_to(agent, connector, name, params) := {
	"agent": agent,
	"org": {"id": "0b6f3c2e-5d1a-4c0e-9a57-3f0e7d1c00aa", "slug": "example"},
	"connector": connector,
	"operation": {
		"name": name,
		"kind": op.kind,
		"base_risk": op.base_risk,
		"reversible": op.reversible,
		"target_type": op.target_type,
	},
	"params": params,
	"target_count": 1,
	"session_context": no_history,
	"now": now,
	"now_ns": now_ns,
} if op := data.arx.catalog[connector][name]

test_suspending_an_okta_user_needs_two_reviewers if {
	d := decide(call_to(soc_bot, "okta", "users:suspend", {"user_id": "00u1abcdefghijklmnop"}))
	[d.verdict, d.policy_id, d.approvals_required] == ["ESCALATE", "EX-060", 2]
}

test_jira_tickets_only_in_sec if {
	elsewhere := decide(call_to(soc_bot, "jira", "issues:create", {"project": "HR", "summary": "x"}))
	[elsewhere.verdict, elsewhere.policy_id] == ["DENY", "EX-061"]
	sec := decide(call_to(soc_bot, "jira", "issues:create", {"project": "SEC", "summary": "x"}))
	[sec.verdict, sec.policy_id] == ["ESCALATE", "default:write"]
}

test_closing_a_sentinel_incident_needs_a_reviewer if {
	closing := {"incident_id": "x", "title": "t", "severity": "High", "status": "Closed"}
	d := decide(call_to(soc_bot, "sentinel", "incidents:update", closing))
	[d.verdict, d.policy_id] == ["ESCALATE", "EX-062"]
	reading := decide(call_to(soc_bot, "sentinel", "incidents:list", {}))
	[reading.verdict, reading.policy_id] == ["PERMIT", "default:read"]
}

test_triage_bot_never_updates_notables if {
	d := decide(call_to(triage_bot, "splunk", "notable:update", {"rule_uids": ["n1"], "status": 2}))
	[d.verdict, d.policy_id] == ["DENY", "EX-063"]
}
