-- teach_acks: acks=leader confirms a publish as soon as the leader has
-- appended it to its own log, before any follower has it. Isolate that
-- leader from its peers while clients still reach it: it keeps confirming
-- until check_quorum makes it step down; the majority elects a new leader
-- whose log lacks those entries, and when the old leader rejoins, Raft
-- overwrites its uncommitted suffix. Confirmed messages vanish.
-- acks=quorum confirms only after commit (a majority has the entry), so the
-- same faults cost availability, never data.
scenario {
  name = "teach_acks",
  description = "acks=leader vs acks=quorum under an isolated leader and a leader crash.",
  seeds = "1..5",
}

cluster { replicas = 3, fsync = "always", election_timeout_ms = 500 }
workload {
  producers = { count = 2, rate = 300, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 12, heal = 3, drain = 15 }

at(3, function() log("isolate the leader (clients still reach it)"); isolate(leader()) end)
at(6, function() heal() end)
at(8, function() isolate(leader()) end)
at(10, function() crash(leader()); heal() end)
at(11, function() restart(down()) end)

expect { no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true }

teach {
  lesson = "acks=leader confirms before replication: an isolated or crashed "
    .. "leader's confirmed suffix is overwritten by the new leader",
  violation = "no_loss",
  weak = { acks = "leader" },
  strong = { acks = "quorum" },
}
