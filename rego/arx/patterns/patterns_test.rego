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
	patterns.all_valid(["hosts:*"])
	patterns.all_valid(["**"])
	patterns.all_valid(["hosts:{contain,lift_containment}"])
}

test_malformed_patterns_are_not_valid if {
	not patterns.all_valid(["hosts:["])
	not patterns.all_valid([7])
}

test_a_list_is_missed_only_when_every_pattern_is_valid_and_none_matches if {
	patterns.misses_all(["hosts:*", "detects:get"], "policies:list")
	patterns.misses_all([], "hosts:search")
	not patterns.misses_all(["detects:get", "hosts:*"], "hosts:contain")
	not patterns.misses_all(["hosts:[", "detects:get"], "policies:list")
	not patterns.misses_all([7], "policies:list")
}

test_a_list_is_valid_when_every_pattern_compiles if {
	patterns.all_valid(["hosts:*", "**", "hosts:{contain,lift_containment}"])
	patterns.all_valid([])
	not patterns.all_valid(["hosts:*", "hosts:["])
	not patterns.all_valid(["hosts:*", 7])
	not patterns.all_valid("hosts:*")
	not patterns.all_valid({"a": "hosts:*"})
}

# The functions write the delimiters as a literal; they must agree with
# glob.match under `delimiters` on every pattern and name.
corpus_patterns := ["*", "**", "hosts:*", "hosts:**", "*:contain", "hosts:lift_*", "hosts:{get,search}", "hosts:?et"]

corpus_names := ["ping", "hosts:get", "hosts:contain", "hosts:groups:add", "hosts:lift_containment", "detects:get"]

test_functions_use_the_named_delimiters if {
	patterns.delimiters == [":"]
	every name in corpus_names {
		every pattern in corpus_patterns {
			expected := glob.match(pattern, patterns.delimiters, name)
			matches(pattern, name) == expected
			misses(pattern, name) == not_(expected)
		}
	}
}

matches(pattern, name) if {
	patterns.matches_any([pattern], name)
} else := false

misses(pattern, name) if {
	patterns.misses_all([pattern], name)
} else := false

not_(b) := b == false
