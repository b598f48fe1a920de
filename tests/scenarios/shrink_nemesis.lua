-- shrink_nemesis: the swarm nemesis against a weak strategy (acks=leader,
-- fsync=never, unclean elections), plus an every() action and a minority()
-- draw: tests/test_scenarios_shrink.c shrinks a seed that loses messages and
-- checks that the run's explicit schedule repeats its trace hash.
scenario { name = "shrink_nemesis", seeds = "1..10" }

cluster { replicas = 3, acks = "leader", fsync = "never", election = "unclean" }
workload {
  producers = { count = 2, rate = 100, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, idempotent = true },
}
phases { chaos = 12, heal = 3, drain = 10 }

nemesis { kinds = "all", swarm = true, interval = 1.5, duration = 2 }
every(4, function() log("tick") end)
at(5, function() local m = minority(); pause(m); resume(m) end)

expect { no_loss = true }
