-- disk_loss: permanent node loss. A follower's disk is destroyed (wipe: the
-- machine comes back with an empty disk, no log, no snapshot, no term or
-- vote) and it rejoins, catching up from the leader by snapshot and log.
-- Later the same happens to the leader. With three replicas and one disk
-- lost at a time, every confirmed message still has a majority of copies.
scenario {
  name = "disk_loss",
  description = "A follower's disk, then the leader's, is destroyed; each broker "
    .. "restarts empty and catches up by snapshot while the others keep serving.",
  seeds = "1..5",
}

cluster { replicas = 3, acks = "quorum", fsync = "always", snapshot_every = 500 }
workload {
  producers = { rate = 200, timeout_ms = 500, retries = 20 },
  consumers = { idempotent = true },
}
phases { chaos = 12, heal = 3, drain = 10 }

at(3, function() wipe(followers()[1]) end)
at(8, function() wipe(leader()) end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  recovery = 3,
}
