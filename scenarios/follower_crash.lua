-- follower_crash: one follower crashes, then (after it is back) another one.
-- The leader keeps a majority the whole time, so the cluster should barely
-- notice: availability stays high and no publish waits long. The returning
-- follower recovers from its disk and catches up from the leader (entries or
-- a snapshot) before it counts toward commits again.
scenario {
  name = "follower_crash",
  description = "A follower crashes and restarts, twice; the leader keeps its "
    .. "quorum throughout.",
  seeds = "1..10",
}

cluster { replicas = 3 }
workload {
  producers = { count = 2, rate = 200, idempotent = true },
  consumers = { count = 1, ack = "manual" },
}
phases { chaos = 14, heal = 2, drain = 15 }

-- A set is a list of node numbers: followers()[1] is one follower.
local victim
at(3, function() victim = followers()[1]; log("crash follower n%d", victim); crash(victim) end)
at(6, function() restart(victim) end)
at(9, function() victim = followers()[1]; crash(victim) end)
at(12, function() restart(victim) end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.95, recovery = 1, max_unavailable = 1,
}
