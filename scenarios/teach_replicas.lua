-- teach_replicas: permanent disk loss against the replication factor. The
-- leader's disk is destroyed (wipe: it reboots empty). With one replica
-- that disk held the only copy of every confirmed message still queued:
-- they are gone, and the broker starts over from nothing. With three
-- replicas a quorum confirmed every message, so two copies survive, a new
-- leader takes over and the wiped broker catches up from it.
scenario {
  name = "teach_replicas",
  description = "replicas=1 vs replicas=3 when the leader's disk is destroyed.",
  seeds = "1..4",
}

cluster { replicas = 3, acks = "quorum", fsync = "always", snapshot_every = 500 }
workload {
  producers = { rate = 200, timeout_ms = 500, retries = 20 },
  -- a slow consumer: a backlog of confirmed messages waits in the queue
  consumers = { idempotent = true, processing_ms = 8 },
}
phases { chaos = 8, heal = 3, drain = 25 }

at(5, function() wipe(leader()) end)

expect { no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true }

teach {
  lesson = "one replica is one disk: when it is destroyed, every confirmed message "
    .. "not yet consumed is gone; a quorum of copies survives the loss of any one disk",
  violation = "no_loss",
  weak = { replicas = 1 },
  strong = { replicas = 3 },
}
