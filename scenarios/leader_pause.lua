-- leader_pause: the leader stops for 1.5 s (a stop-the-world GC pause or
-- SIGSTOP), five times the election timeout. The others elect a new leader;
-- when the old one wakes up it still believes it leads, with requests and
-- timers queued. It must learn the new term before confirming anything:
-- with acks=quorum it cannot commit without a majority, which has moved on.
scenario {
  name = "leader_pause",
  description = "The leader pauses longer than the election timeout, twice, "
    .. "then resumes believing it still leads.",
  seeds = "1..10",
}

cluster { replicas = 3, election_timeout_ms = 300 }
workload {
  producers = { count = 1, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 14, heal = 3, drain = 15 }

local paused
at(3, function() paused = leader(); log("pause the leader"); pause(paused) end)
at(4.5, function() resume(paused) end)
at(9, function() paused = leader(); pause(paused) end)
at(10.5, function() resume(paused) end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.7, recovery = 3, max_unavailable = 3,
}
