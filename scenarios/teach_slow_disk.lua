-- teach_slow_disk: a slow disk's effect on latency. From t=2 s every fsync
-- takes 40 ms (a saturated or failing disk). With fsync=always a confirm
-- waits for the leader's fsync and a follower's (acks=quorum), so every
-- confirm pays for the slow disk: the publish->confirm p99 jumps far above
-- 30 ms. With fsync=interval:50 confirms wait for replication in memory
-- only and the disk is flushed in the background: latency stays low — at
-- the price teach_fsync shows under power loss.
scenario {
  name = "teach_slow_disk",
  description = "fsync=always vs fsync=interval:50 on a disk whose fsync takes 40 ms: "
    .. "publish->confirm p99.",
  seeds = "1..3",
}

cluster { replicas = 3, acks = "quorum", fsync = "always" }
workload { producers = { rate = 100 }, consumers = { idempotent = true } }
phases { chaos = 6, heal = 1, drain = 6 }

at(2, function() disk_slow(all(), 40) end)

expect { no_loss = true, no_duplicates = true, replica_agreement = true, latency_p99_ms = 30 }

teach {
  lesson = "fsync=always makes every confirm wait for the disk: a slow disk is slow confirms",
  violation = "latency",
  weak = { fsync = "always" },
  strong = { fsync = "interval:50" },
}
