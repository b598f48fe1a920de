-- clock_skew: brokers' clocks jump and drift (n0 +500 ms, n1 -300 ms and
-- running 5% fast, n2 running 5% slow). Raft must rely only on elapsed
-- local time for its timeouts, never on comparing clocks across machines;
-- a fast clock only makes a follower campaign a bit early (pre-vote keeps
-- that from disturbing a healthy leader).
scenario {
  name = "clock_skew",
  description = "Clock offsets and 5% drift on every broker for the whole chaos phase.",
  seeds = "1..10",
}

cluster { replicas = 3, pre_vote = true }
workload {
  producers = { count = 1, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 12, heal = 2, drain = 15 }

at(1, function()
  clock(node(0), 500, 0)
  clock(node(1), -300, 50000)
  clock(node(2), 0, -50000)
end)
at(6, function() crash(leader()) end)
at(8, function() restart(down()) end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.8, recovery = 3,
}
