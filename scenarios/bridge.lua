-- bridge: five brokers split into two halves {n0,n1} and {n3,n4} that cannot
-- talk to each other, joined by n2 which sees both. Only n2 can gather a
-- majority (itself + either half), so leadership must settle on it (or on a
-- node whose votes come through it) without flapping forever.
scenario {
  name = "bridge",
  description = "Two halves of a 5-broker cluster joined only by n2 (Jepsen's "
    .. "bridge partition).",
  seeds = "1..10",
}

cluster { replicas = 5 }
workload {
  producers = { count = 1, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 14, heal = 3, drain = 15 }

at(3, function() bridge(nodes(0, 1), 2) end)
at(11, function() heal() end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.5, recovery = 3,
}
