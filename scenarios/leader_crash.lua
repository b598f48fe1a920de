-- leader_crash: the leader machine crashes twice mid-stream (unsynced writes
-- lost) and comes back a few seconds later. acks=quorum + fsync=always: every
-- confirmed message was on a majority's disk, so the new leader has it.
-- Consumers are idempotent: an ack in flight to the dying leader is lost, the
-- new leader redelivers (at-least-once), and the consumer must not apply the
-- message twice. Producers retry through the failover with the same
-- (producer id, sequence), so broker dedup drops the copies.
scenario {
  name = "leader_crash",
  description = "The leader crashes mid-stream, twice; a new leader takes over "
    .. "and the old one recovers from its disk and rejoins as a follower.",
  seeds = "1..10",
}

cluster { replicas = 3, acks = "quorum", fsync = "always", election = "safe", dedup = true }
workload {
  producers = { count = 2, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 15, heal = 3, drain = 15 }

at(4, function() log("crash the leader"); crash(leader()) end)
at(7, function() restart(down()) end)
at(10, function() log("crash the new leader"); crash(leader()) end)
at(13, function() restart(down()) end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.7, recovery = 3, max_unavailable = 3,
}
