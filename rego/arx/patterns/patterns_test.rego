package arx.patterns_test

import data.arx.patterns

test_exact_name_matches if {
	patterns.matches_any(["hosts:get", "hosts:search"], "hosts:search")
}

test_segment_wildcard_matches_one_segment if {
	patterns.matches_any(["hosts:*"], "hosts:contain")
	not patterns.matches_any(["hosts:*"], "detects:get")
	not patterns.matches_any(["hosts:*"], "hosts:groups:add")
}

test_single_star_does_not_cross_delimiter if {
	not patterns.matches_any(["*"], "hosts:contain")
	patterns.matches_any(["*"], "ping")
}

test_double_star_matches_everything if {
	patterns.matches_any(["**"], "hosts:contain")
	patterns.matches_any(["hosts:**"], "hosts:groups:add")
}

test_prefix_glob_within_segment if {
	patterns.matches_any(["hosts:lift_*"], "hosts:lift_containment")
	not patterns.matches_any(["hosts:lift_*"], "hosts:contain")
}

test_empty_pattern_list_matches_nothing if {
	not patterns.matches_any([], "hosts:search")
}

test_valid_patterns if {
	patterns.valid("hosts:*")
	patterns.valid("**")
	patterns.valid("hosts:{contain,lift_containment}")
}

test_malformed_patterns_are_not_valid if {
	not patterns.valid("hosts:[")
	not patterns.valid(7)
}

test_a_list_is_missed_only_when_every_pattern_is_valid_and_none_matches if {
	patterns.misses_all(["hosts:*", "detects:get"], "policies:list")
	patterns.misses_all([], "hosts:search")
	not patterns.misses_all(["detects:get", "hosts:*"], "hosts:contain")
	not patterns.misses_all(["hosts:[", "detects:get"], "policies:list")
	not patterns.misses_all([7], "policies:list")
}
