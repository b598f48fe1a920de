-- isolate_leader: the leader is cut off from every other broker while the
-- clients still reach it (partitions only cut broker<->broker links). With
-- acks=quorum it cannot commit, so it confirms nothing; it steps down after
-- an election timeout (check_quorum) and points clients at the new leader.
-- Its uncommitted suffix is overwritten when it rejoins: that is safe only
-- because none of it was confirmed (compare teach_acks).
scenario {
  name = "isolate_leader",
  description = "The leader is isolated from its peers but not from clients, "
    .. "twice; it must not confirm anything it cannot commit.",
  seeds = "1..10",
}

cluster { replicas = 3, acks = "quorum", check_quorum = true }
workload {
  producers = { count = 2, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 15, heal = 3, drain = 15 }

at(3, function() isolate(leader()) end)
at(7, function() heal() end)
at(9, function() isolate(leader()) end)
at(13, function() heal() end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.7, recovery = 3, max_unavailable = 3,
}
