-- minority_partition: five brokers, a random minority (two) is cut off from
-- the rest, twice. If the leader is in the minority it loses its quorum
-- (check_quorum makes it step down) and the majority elects a new one;
-- clients still reach every broker and follow NOT_LEADER hints.
scenario {
  name = "minority_partition",
  description = "A random minority of a 5-broker cluster is partitioned away "
    .. "twice; the majority side keeps serving.",
  seeds = "1..10",
}

cluster { replicas = 5 }
workload {
  producers = { count = 2, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 15, heal = 3, drain = 15 }

at(3, function() split(minority()) end)
at(7, function() heal() end)
at(9, function() split(minority()) end)
at(13, function() heal() end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.7, recovery = 3, max_unavailable = 3,
}
