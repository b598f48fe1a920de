-- disk_corruption: silent bit flips land in one replica's log files; the
-- replica crashes and recovers from that disk. The CRC32C on every record
-- must catch the damage: the replica marks its log corrupt, refuses to vote
-- with it, and repairs from the leader. Nothing corrupt may ever be served
-- (no_phantoms), nothing confirmed lost, replicas must agree.
scenario {
  name = "disk_corruption",
  description = "Bit flips in one replica's log, then a crash and restart: the "
    .. "corruption is detected, never served, and repaired.",
  seeds = "1..10",
}

cluster { replicas = 3 }
workload {
  producers = { count = 1, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 14, heal = 3, drain = 15 }

at(4, function() log("flip 16 bits in n2's files"); disk_corrupt(node(2), 16) end)
at(5, function() crash(node(2)) end)
at(6, function() restart(node(2)) end)
at(9, function() log("flip 16 bits in n1's files"); disk_corrupt(node(1), 16) end)
at(10, function() crash(node(1)) end)
at(11, function() restart(node(1)) end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.7,
}
