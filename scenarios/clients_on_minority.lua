-- clients_on_minority: a 5-broker cluster splits 2 | 3, and one producer and
-- the consumer can reach only the minority side (their links to the
-- majority are cut: partition_client). The minority cannot commit, so these
-- clients can get nothing confirmed and nothing delivered there — but the
-- brokers they reach must not confirm anything either (a stale leader on the
-- minority side would). The other producer, on the majority side, keeps
-- going. After heal everything published and confirmed must be consumed.
scenario {
  name = "clients_on_minority",
  description = "A 2|3 split with a producer and the consumer able to reach only the "
    .. "minority brokers: nothing confirmed there is lost, the majority keeps serving.",
  seeds = "1..5",
}

cluster { replicas = 5, acks = "quorum", check_quorum = true }
workload {
  producers = { count = 2, rate = 100, timeout_ms = 500, retries = 30 },
  consumers = { count = 1, idempotent = true },
}
phases { chaos = 10, heal = 3, drain = 12 }

local minority_side
at(3, function()
  -- the leader and one other broker form the minority: the worst case
  minority_side = { leader()[1], followers()[1] }
  log("minority {%s}", table.concat(minority_side, ","))
  split(minority_side)
  partition_client(producer(0), others(minority_side))
  partition_client(consumer(0), others(minority_side))
end)
at(7, function() heal() end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  recovery = 3,
}
