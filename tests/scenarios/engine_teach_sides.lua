-- Teach sides with their own workload and expectations: the strong side
-- alone is held to a latency bound and runs two consumers.
scenario { name = "engine_teach_sides" }
cluster { replicas = 3 }
workload { producers = { rate = 50 }, consumers = { count = 1 } }
phases { chaos = 2, heal = 1, drain = 3 }
expect { no_loss = true }
teach {
  lesson = "fsync never loses what power loss takes", violation = "no_loss",
  weak = { fsync = "never" },
  strong = { fsync = "always", workload = { consumers = { count = 2 } },
             expect = { latency_p99_ms = 60000, no_duplicates = false } },
}
at(1.5, function() power_loss() end)
at(1.6, function() restart(down()) end)
